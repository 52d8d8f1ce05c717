//go:build !linux

package fleet

import "os/exec"

// spawn starts cmd. Outside Linux there is no parent-death signal: a
// worker outlives a test process that is killed before its cleanups run.
func spawn(cmd *exec.Cmd) error { return cmd.Start() }
