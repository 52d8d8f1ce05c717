package fleet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binaryPackage is the import path of the wxnotify command.
const binaryPackage = "github.com/wxnotify/wxnotify/cmd/wxnotify"

// built is the binary of this test process, made at most once.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary returns the path of a wxnotify binary built from this module,
// building it on the first call of the test process. A build failure
// fails every test that asks for it. Cleanup removes the binary.
func Binary(t testing.TB) string {
	t.Helper()
	built.once.Do(build)
	if built.err != nil {
		t.Fatalf("build wxnotify: %v", built.err)
	}
	return built.path
}

func build() {
	dir, err := os.MkdirTemp("", "wxnotify-fleet-")
	if err != nil {
		built.err = fmt.Errorf("make build directory: %w", err)
		return
	}
	built.dir = dir
	path := filepath.Join(dir, "wxnotify")

	cmd := exec.Command(goTool(), "build", "-o", path, binaryPackage)
	if out, err := cmd.CombinedOutput(); err != nil {
		built.err = fmt.Errorf("go build %s: %w\n%s", binaryPackage, err, out)
		return
	}
	built.path = path
}

// goTool finds the go command: on PATH, else under GOROOT.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// Cleanup removes the binary Binary built, if any. Call it from TestMain
// after m.Run; later calls to Binary in the same process fail.
func Cleanup() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}
