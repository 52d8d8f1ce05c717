// Command harness measures wxnotify against a private redis-server and the
// fake WeChat over loopback, with real worker processes, and writes the
// figures to docs/benchmarks.md.
//
//	harness bench  [-out FILE] [-only NAME] [-reps N]   throughput, latency, tokens, ...
//	harness chaos  [-out FILE] [-only NAME]             the fault suite
//	harness smoke  [-out FILE]                          both, with tiny N, in seconds
//
// `harness ref` is the reference consumer (no-op or naive sender) that the
// harness execs as a process of its own; it is not meant to be run by hand.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the flags shared by bench, chaos and smoke.
type options struct {
	out   string
	only  string
	reps  int
	smoke bool
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var err error
	switch os.Args[1] {
	case "ref":
		err = runRef(ctx, os.Args[2:])
	case "bench", "chaos", "smoke":
		err = runSuite(ctx, os.Args[1], os.Args[2:])
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: harness bench|chaos|smoke [-out FILE] [-only NAME] [-reps N]")
}

func runSuite(ctx context.Context, mode string, args []string) error {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	var o options
	fs.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown file to write the figures to")
	fs.StringVar(&o.only, "only", "", "run only this scenario (see the headings of the report)")
	fs.IntVar(&o.reps, "reps", 3, "repetitions of the side-by-side comparisons")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.smoke = mode == "smoke"
	if o.smoke {
		o.reps = 1
	}

	lab, err := newLab(ctx)
	if err != nil {
		return err
	}
	defer lab.close()
	start := time.Now()
	return lab.run(ctx, mode, o, start)
}

// run executes the suites of mode and writes their sections.
func (l *lab) run(ctx context.Context, mode string, o options, start time.Time) error {
	if mode == "bench" || mode == "smoke" {
		sec, err := l.benchSuite(ctx, o)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if err := writeSection(o.out, "bench", l.header(mode, o, start)+sec); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "harness: bench figures written to %s (%s)\n", o.out,
			time.Since(start).Round(time.Second))
	}
	if mode == "chaos" || mode == "smoke" {
		cstart := time.Now()
		sec, failed, err := l.chaosSuite(ctx, o)
		if err != nil {
			return fmt.Errorf("chaos: %w", err)
		}
		if err := writeSection(o.out, "chaos", l.header(mode, o, cstart)+sec); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "harness: chaos results written to %s (%s)\n", o.out,
			time.Since(cstart).Round(time.Second))
		if failed > 0 {
			return fmt.Errorf("chaos: %d scenario(s) missed the target (lost, duplicated or "+
				"unexplained archives); see %s", failed, o.out)
		}
	}
	return nil
}
