// Package fleet runs real `wxnotify worker` processes for tests, so that
// what only shows with several processes (one shared token, one stop for
// the whole fleet, a crash in the middle of a send) is tested the way it
// runs in production.
//
// Binary builds the wxnotify binary once per test process. Start runs n
// workers with a given environment, each writing its JSON log to its own
// file, and returns once every one of them has logged "worker started".
// A Fleet stops its processes when the test ends, with SIGKILL for any
// that outlive a grace period, and on Linux the kernel kills them too if
// the test process itself dies.
//
// Harness is the usual setup around a fleet: a slice of the test Redis,
// the fake WeChat server, a producer, an inspector, the environment every
// worker needs, wait helpers, and a check at the end of the test that no
// log line and no stored task error or result holds the AppSecret or any
// token the fake issued.
package fleet
