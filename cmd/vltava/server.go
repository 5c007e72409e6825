package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/cli"
	"github.com/vltava/vltava/internal/cli/cmdflag"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/server"
)

type overrides map[string]string

func (o overrides) String() string { return "" }
func (o overrides) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	o[strings.TrimSpace(k)] = strings.TrimSpace(v)
	return nil
}

// serverOpts are the flags of `vltava server`.
type serverOpts struct {
	configPath, dataDir, listen, readyFile, logLevel, cpuProfile *string
	overrides                                                    overrides
}

func serverFlags(stdout, stderr io.Writer) (*cmdflag.Set, serverOpts) {
	fs := cmdflag.New("server", "[flags]", stdout, stderr)
	fs.About = "Configuration comes from defaults, then --config, then VLTAVA_<KEY> environment\nvariables (log.dirs -> VLTAVA_LOG_DIRS), then --override and the flags below."
	o := serverOpts{
		configPath: fs.String("config", "", "properties `FILE` with Kafka's broker config keys"),
		dataDir:    fs.String("data-dir", "", "data directory (log.dirs); default ./data"),
		listen:     fs.String("listen", "", "`HOST:PORT` to listen on (listeners); port 0 picks a free port"),
		readyFile:  fs.String("ready-file", "", "write the bound host:port to this `FILE` once serving"),
		logLevel:   fs.String("log-level", "info", "debug, info, warn or error"),
		cpuProfile: fs.String("cpuprofile", "", "write a CPU profile of the whole run to this `FILE` (for performance work)"),
		overrides:  overrides{},
	}
	fs.Var(o.overrides, "override", "`key=value` broker config override (repeatable), e.g. --override num.partitions=3")
	return fs, o
}

func runServer(args []string) error {
	fs, o := serverFlags(os.Stdout, os.Stderr)
	configPath, dataDir, listen, readyFile, logLevel, cpuProfile, ov := o.configPath, o.dataDir, o.listen, o.readyFile, o.logLevel, o.cpuProfile, o.overrides
	rest, err := fs.Parse(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(rest) > 0 {
		return fs.Fail(fmt.Errorf("unexpected arguments %q", rest))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(logger)

	if *dataDir != "" {
		ov["log.dirs"] = *dataDir
	}
	if *listen != "" {
		ov["listeners"] = "PLAINTEXT://" + *listen
	}
	cfg, err := config.Load(*configPath, os.Environ(), ov)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	// Signals are caught from before the broker opens: a SIGTERM that arrives while it
	// starts (a test or supervisor that saw the start line) is a clean shutdown once
	// the broker is up, not the default action of killing it mid-write.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	srv, err := server.New(cfg, broker.Options{Logger: logger})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return err
	}
	if *readyFile != "" {
		tmp := *readyFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(srv.Broker().Advertised()[0]), 0o644); err != nil {
			srv.Close()
			return err
		}
		if err := os.Rename(tmp, *readyFile); err != nil {
			srv.Close()
			return err
		}
	}
	dirs, _ := filepath.Abs(strings.Join(cfg.LogDirs, ","))
	logger.Info("vltava started", "version", cli.Version().String(), "node.id", cfg.NodeID, "cluster.id", srv.Broker().ClusterID(), "log.dirs", dirs, "listeners", srv.Addrs())

	select {
	case s := <-sig:
		logger.Info("shutting down", "signal", s.String())
	case <-srv.Broker().Halted():
		// Every log dir failed (the ERROR lines before say which and why), as Kafka
		// halts: stop serving; the failed logs write no clean-shutdown marker, so the
		// next start recovers them by a scan.
		return errors.Join(srv.Broker().HaltErr(), srv.Close())
	}
	if err := srv.Close(); err != nil {
		return err
	}
	logger.Info("stopped cleanly")
	return nil
}
