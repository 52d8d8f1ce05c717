// Command wxnotify delivers WeChat service-account template messages from
// a Redis queue. Run `wxnotify help` for its subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// env is the process environment seen by a subcommand: variables plus the
// standard streams.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// stdinIsTerminal tells enqueue whether to wait for lines on stdin.
	stdinIsTerminal bool
	// stderrIsTerminal picks console logs under LOG_FORMAT=auto.
	stderrIsTerminal bool
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, e *env) error
}

func commands() []command {
	return []command{
		{"worker", "deliver queued messages to WeChat (runs until SIGTERM/SIGINT)", runWorker},
		{"enqueue", "queue one message from flags, or many from JSON lines", runEnqueue},
		{"mock", "run the fake WeChat API server for tests and demos", runMock},
		{"demo", "run everything in process and show what happens to a few reminders", runDemo},
		{"status", "show the queues and every account's stops", runStatus},
		{"resume", "clear an account's stops after fixing the cause", runResume},
		{"env", "list the environment variables and their defaults", runEnvHelp},
	}
}

// exitError carries a process exit code without a message of its own.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// go-redis prints dial retries straight to stderr; wxnotify reports
	// Redis failures itself, once, with what to do.
	redis.SetLogger(silentRedisLogger{})

	e := &env{
		getenv:           os.Getenv,
		stdin:            os.Stdin,
		stdout:           os.Stdout,
		stderr:           os.Stderr,
		stdinIsTerminal:  isTerminal(os.Stdin),
		stderrIsTerminal: isTerminal(os.Stderr),
	}
	os.Exit(exitCode(run(ctx, os.Args[1:], e), e.stderr))
}

func exitCode(err error, stderr io.Writer) int {
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintln(stderr, "wxnotify:", strings.ReplaceAll(err.Error(), "\n", "\nwxnotify: "))
		return 1
	}
}

// run dispatches to a subcommand. It owns no process state, so tests call
// it directly.
func run(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			return run(ctx, []string{args[1], "-h"}, e)
		}
		printUsage(e.stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], e)
		}
	}
	printUsage(e.stderr)
	return fmt.Errorf("unknown command %q; run `wxnotify help` for the list", args[0])
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "wxnotify delivers WeChat template messages from a Redis queue.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: wxnotify <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "  help     show this list; `wxnotify help <command>` or `<command> -h` for flags")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Configuration comes from environment variables (`wxnotify env`);")
	fmt.Fprintln(w, "flags override them.")
}

func runEnvHelp(_ context.Context, args []string, e *env) error {
	fs := newFlagSet("env", "list the environment variables, their defaults and current values", e)
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, v := range envVars {
		cur := shownValue(v.Name, e.getenv(v.Name))
		fmt.Fprintf(e.stdout, "%-24s default %-26q now %q\n    %s\n", v.Name, v.Default, cur, v.Usage)
	}
	return nil
}

// shownValue is the value of variable name as `wxnotify env` prints it:
// secrets hidden, and Redis URLs without their password.
func shownValue(name, v string) string {
	switch {
	case v == "":
		return v
	case strings.Contains(name, "SECRET") && !strings.HasSuffix(name, "_FILE"):
		return "(set, hidden)"
	case name == "REDIS_URL":
		return redactURL(v)
	}
	return v
}

// newFlagSet builds a subcommand's flag set that reports errors instead
// of exiting and prints its usage to stderr.
func newFlagSet(name, summary string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: wxnotify %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// overrides lets flags stand in for environment variables: a flag that
// was set wins over the variable of the same meaning.
type overrides struct {
	values map[string]*string
	fs     *flag.FlagSet
	flags  map[string]string // flag name -> variable name
}

func newOverrides(fs *flag.FlagSet) *overrides {
	return &overrides{values: map[string]*string{}, fs: fs, flags: map[string]string{}}
}

// add registers --flagName as an override of the variable envName.
func (o *overrides) add(flagName, envName, usage string) {
	o.values[envName] = o.fs.String(flagName, "", usage+" (overrides "+envName+")")
	o.flags[flagName] = envName
}

// getenv returns the environment seen through the flags that were set.
func (o *overrides) getenv(base func(string) string) func(string) string {
	set := map[string]bool{}
	o.fs.Visit(func(f *flag.Flag) {
		if envName, ok := o.flags[f.Name]; ok {
			set[envName] = true
		}
	})
	return func(name string) string {
		if set[name] {
			return *o.values[name]
		}
		return base(name)
	}
}

type silentRedisLogger struct{}

func (silentRedisLogger) Printf(context.Context, string, ...any) {}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
