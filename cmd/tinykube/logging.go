package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/tinykube/tinykube/internal/lifecycle"
)

// logOptions are the flags of the process's one log.
type logOptions struct {
	format    string
	verbosity int
}

func addLogFlags(f *pflag.FlagSet, o *logOptions) {
	f.StringVar(&o.format, "log-format", "text", "format of the log on stderr: text (key=value lines) or json (one object a line)")
	f.IntVarP(&o.verbosity, "v", "v", 0, "log verbosity: 0 logs info and above; higher numbers add upstream's V-levels and, from 4, debug lines")
}

// newLogger builds the process's one log on w and routes every other way
// of logging into it: slog's default, the standard library's log package
// and klog (client-go and other Kubernetes libraries). Every line carries
// time, level, message and the component that wrote it; lines from
// libraries that log through a global carry component=klog or
// component=log.
func (o logOptions) newLogger(w io.Writer) (*slog.Logger, error) {
	if o.verbosity < 0 {
		return nil, fmt.Errorf("-v %d: verbosity must not be negative", o.verbosity)
	}
	// klog's V(n) becomes slog level -n (logr's mapping), so -v n lets
	// through V-levels up to n, and slog's Debug (-4) from -v 4.
	opts := &slog.HandlerOptions{Level: slog.Level(-o.verbosity)}
	var h slog.Handler
	switch o.format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: must be text or json", o.format)
	}
	logger := slog.New(h)
	slog.SetDefault(logger.With("component", "log"))
	// SetDefault sends the log package's output through the handler at
	// Info; no prefix or flags of its own, the handler adds the time.
	log.SetFlags(0)
	log.SetPrefix("")
	klog.SetSlogLogger(logger.With("component", "klog"))
	// klog filters V-levels before they reach its logger.
	var fs flag.FlagSet
	klog.InitFlags(&fs)
	if err := fs.Set("v", strconv.Itoa(o.verbosity)); err != nil {
		return nil, err
	}
	return logger, nil
}

// errLogged is a failure that is already in the log: the process exits
// non-zero without saying it again.
var errLogged = errors.New("failure logged")

// runLogged runs f, a long-running command (server, agent), with the
// process's one log on stderr and a context that ends at SIGTERM or
// SIGINT; a second signal ends the process at once. A failure is logged
// as one line naming the component that failed.
func runLogged(ctx context.Context, o logOptions, stderr io.Writer, f func(context.Context, *slog.Logger) error) error {
	logger, err := o.newLogger(stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	err = f(ctx, logger)
	if err == nil {
		return nil
	}
	var failed *lifecycle.Error
	if errors.As(err, &failed) {
		logger.Error("failed; stopping", "component", failed.Component, "err", failed.Err)
	} else {
		logger.Error("failed; stopping", "component", "tinykube", "err", err)
	}
	return errLogged
}
