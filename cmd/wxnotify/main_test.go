package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"regexp"
	"strings"
	"testing"
)

func TestHelpListsEverySubcommand(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {}} {
		t.Run(strings.Join(append([]string{"wxnotify"}, args...), " "), func(t *testing.T) {
			t.Parallel()
			te := newTestEnv(t, nil)
			if err := te.run(context.Background(), args...); err != nil {
				t.Fatalf("run: %v", err)
			}
			for _, name := range []string{"worker", "enqueue", "mock", "demo", "env", "help"} {
				if !regexp.MustCompile(`(?m)^  ` + name + ` +\S`).MatchString(te.stdout.String()) {
					t.Errorf("help does not list %q:\n%s", name, te.stdout.String())
				}
			}
		})
	}
}

func TestSubcommandHelpPrintsUsageAndExitsZero(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {"help", c.name}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				t.Parallel()
				te := newTestEnv(t, nil)
				err := te.run(context.Background(), args...)
				if err != nil && !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("run: %v, want nil or flag.ErrHelp", err)
				}

				var stderr bytes.Buffer
				if code := exitCode(err, &stderr); code != 0 || stderr.Len() > 0 {
					t.Errorf("exit code %d, stderr %q; want 0 and nothing", code, stderr.String())
				}
				if !strings.Contains(te.stderr.String(), "Usage: wxnotify "+c.name+" [flags]") {
					t.Errorf("no usage line for %s:\n%s", c.name, te.stderr.String())
				}
			})
		}
	}
}

func TestUnknownCommandFails(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"frobnicate"}, {"help", "frobnicate"}, {"Worker"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			te := newTestEnv(t, nil)
			err := te.run(context.Background(), args...)
			if err == nil || !strings.Contains(err.Error(), "unknown command") {
				t.Fatalf("run: %v, want an unknown command error", err)
			}

			var stderr bytes.Buffer
			if code := exitCode(err, &stderr); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.HasPrefix(stderr.String(), "wxnotify: unknown command") {
				t.Errorf("stderr %q does not explain the failure", stderr.String())
			}
			if !strings.Contains(te.stderr.String(), "Commands:") {
				t.Errorf("the command list is not shown:\n%s", te.stderr.String())
			}
		})
	}
}

func TestUndefinedFlagFails(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t, nil)
	err := te.run(context.Background(), "worker", "--no-such-flag")
	if err == nil || errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run: %v, want a flag error", err)
	}
	if code := exitCode(err, &bytes.Buffer{}); code == 0 {
		t.Error("exit code 0 for an undefined flag")
	}
}

func TestExitCodeOfExitErrorPrintsNothing(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	if code := exitCode(exitError{code: 3}, &stderr); code != 3 || stderr.Len() > 0 {
		t.Errorf("exit code %d, stderr %q; want 3 and nothing", code, stderr.String())
	}
}

func TestExitCodePrefixesEveryLineOfAnError(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	code := exitCode(errors.New("configuration: A: bad\nB: worse"), &stderr)
	want := "wxnotify: configuration: A: bad\nwxnotify: B: worse\n"
	if code != 1 || stderr.String() != want {
		t.Errorf("exit code %d, stderr %q; want 1 and %q", code, stderr.String(), want)
	}
}
