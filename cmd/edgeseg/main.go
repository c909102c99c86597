// Command edgeseg is the edge personalization proxy. See README.md, or run
// "edgeseg help".
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	// signals.time_zone names an IANA zone; a host or image without the
	// zone database (scratch, a minimal container) reads this copy.
	_ "time/tzdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, NewMain(), os.Args[1:])
	stop()
	os.Exit(code)
}

// run runs the command args name and returns the process's exit code:
// 0 when it succeeds or only printed help, else the error's own code or 1,
// after printing the error.
func run(ctx context.Context, m *Main, args []string) int {
	err := m.ParseFlags(args)
	if err == nil {
		err = m.Run(ctx)
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintln(m.Stderr, "edgeseg:", err)
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

// exitCoder is an error that chooses the process exit code.
type exitCoder interface{ ExitCode() int }
