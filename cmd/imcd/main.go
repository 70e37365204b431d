// Command imcd runs IMC conference rooms for OpenSIPS as a sidecar: it
// receives E_IMC_MESSAGE events, applies the room rules against the standard
// imc tables, answers through OpenSIPS's t_uac_dlg, and serves the imc MI
// commands.
//
// `imcd -version` prints the version; `imcd -check` checks the configuration
// and the database's tables and prints what would be used (pkg/preflight).
//
// Exit codes: 0 after a clean stop (SIGTERM/SIGINT, drained), or a -check
// that found nothing wrong; 1 when a running daemon fails or a second signal
// cut the drain short; 2 for a configuration or usage error; 3 when start-up
// failed (database, sockets), or -check found what would make it fail.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/daemon"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/preflight"
)

// Exit codes, documented in docs/operations.md.
const (
	exitOK      = 0
	exitAborted = 1
	exitConfig  = 2
	exitStart   = 3
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	cmd, err := config.Parse(args, stderr)
	if errors.Is(err, config.ErrHelp) {
		return exitOK
	}
	if cmd.Action == config.ActionVersion {
		printVersion(stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "imcd: configuration: %v\n", err)
		return exitConfig
	}
	cfg, path := cmd.Config, cmd.Path
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel.Slog())
	logger := newLogger(stderr, cfg.LogFormat, level)
	if cmd.Action == config.ActionCheck {
		return check(cfg, path, stdout, logger)
	}
	setProcs(cfg.GOMAXPROCS, logger)

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(signals)

	d := daemon.New(cfg, logger)
	if err := d.Open(context.Background()); err != nil {
		logger.Error("imcd cannot start", logkey.Err, err)
		return exitStart
	}
	for sig := range signals {
		if sig == syscall.SIGHUP {
			reload(path, level, logger)
			continue
		}
		logger.Info("stopping: draining queued requests and deliveries (send the signal again to stop at once)", logkey.Signal, sig.String(), logkey.Grace, cfg.ShutdownGrace)
		done := make(chan error, 1)
		go func() { done <- d.Close() }()
		for {
			select {
			case err := <-done:
				if err != nil {
					logger.Warn("stopped with errors", logkey.Err, err)
				}
				return exitOK
			case sig := <-signals:
				if sig == syscall.SIGHUP {
					continue
				}
				logger.Warn("second signal: stopping now", logkey.Signal, sig.String())
				return exitAborted
			}
		}
	}
	return exitOK
}

// check runs `imcd -check`: what would be used goes to stdout, what the
// store warns about to the log.
func check(cfg config.Config, path string, stdout io.Writer, logger *slog.Logger) int {
	v, _ := buildVersion()
	fmt.Fprintf(stdout, "imcd %s -check\n", v)
	if err := preflight.Run(context.Background(), cfg, path, stdout, logger); err != nil {
		fmt.Fprintln(stdout, "\nimcd would not start or work as configured: see the problems above")
		return exitStart
	}
	fmt.Fprintln(stdout, "\nconfiguration OK")
	return exitOK
}

// reload applies what can change without a restart: the log level. Other
// keys need a restart, which the log line says.
func reload(path string, level *slog.LevelVar, logger *slog.Logger) {
	if path == "" {
		logger.Info("SIGHUP: no config file to reload")
		return
	}
	cfg := config.Default()
	if err := config.ReadFile(path, &cfg); err != nil {
		logger.Error("SIGHUP: config file not reloaded", logkey.Err, err)
		return
	}
	level.Set(cfg.LogLevel.Slog())
	logger.Log(context.Background(), config.LevelNoticeSlog, "SIGHUP: log_level reloaded (other keys take effect at the next restart)", logkey.LogLevel, cfg.LogLevel.String())
}

// newLogger writes OpenSIPS's level names (NOTICE, CRIT, ALERT) where slog
// has none.
func newLogger(w io.Writer, format string, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key != slog.LevelKey || len(groups) > 0 {
			return a
		}
		l, _ := a.Value.Any().(slog.Level)
		switch {
		case l >= slog.LevelError+8:
			a.Value = slog.StringValue("ALERT")
		case l >= slog.LevelError+4:
			a.Value = slog.StringValue("CRIT")
		case l == config.LevelNoticeSlog:
			a.Value = slog.StringValue("NOTICE")
		}
		return a
	}}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// setProcs applies gomaxprocs unless the GOMAXPROCS environment variable
// says otherwise (the Go runtime has applied that already).
func setProcs(n int, logger *slog.Logger) {
	if env := os.Getenv("GOMAXPROCS"); env != "" {
		logger.Info("GOMAXPROCS from the environment: gomaxprocs is not applied", logkey.GOMAXPROCS, runtime.GOMAXPROCS(0))
		return
	}
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
}
