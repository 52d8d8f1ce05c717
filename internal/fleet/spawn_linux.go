package fleet

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// On Linux every worker gets Pdeathsig SIGKILL, so that it dies with the
// test process even when the test binary is killed before its cleanups
// run. The kernel sends the signal when the thread that started the child
// exits, not the process, so all children are started from one goroutine
// locked to its thread for the life of the test process.

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

// spawn starts cmd from the spawner's thread, with the death signal set.
func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go serveSpawns(spawner.reqs)
	})
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	req := spawnRequest{cmd: cmd, done: make(chan error, 1)}
	spawner.reqs <- req
	return <-req.done
}

// serveSpawns never returns and never unlocks its thread, so the thread
// lives as long as the process.
func serveSpawns(reqs <-chan spawnRequest) {
	runtime.LockOSThread()
	for req := range reqs {
		req.done <- req.cmd.Start()
	}
}
