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
	"github.com/vltava/vltava/internal/logging"
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
	logFormat, httpListen                                        *string
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
		logFormat:  fs.String("log-format", "", "log lines as `text` or json (vltava.log.format; default text)"),
		httpListen: fs.String("http-listen", "", "`HOST:PORT` of the HTTP listener for /metrics, /healthz, /readyz, or none (vltava.http.listener; default 127.0.0.1:9404)"),
		cpuProfile: fs.String("cpuprofile", "", "write a CPU profile of the whole run to this `FILE` (for performance work)"),
		overrides:  overrides{},
	}
	fs.Var(o.overrides, "override", "`key=value` broker config override (repeatable), e.g. --override num.partitions=3")
	return fs, o
}

func runServer(args []string) error {
	fs, o := serverFlags(os.Stdout, os.Stderr)
	configPath, dataDir, listen, readyFile, logLevel, cpuProfile, ov := o.configPath, o.dataDir, o.listen, o.readyFile, o.logLevel, o.cpuProfile, o.overrides
	logFormat, httpListen := o.logFormat, o.httpListen
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
	if *dataDir != "" {
		ov["log.dirs"] = *dataDir
	}
	if *listen != "" {
		ov["listeners"] = "PLAINTEXT://" + *listen
	}
	if *logFormat != "" {
		ov["vltava.log.format"] = *logFormat
	}
	if *httpListen != "" {
		ov["vltava.http.listener"] = *httpListen
	}
	cfg, err := config.Load(*configPath, os.Environ(), ov)
	if err != nil {
		return err
	}
	h, err := logging.NewHandler(os.Stderr, cfg.Values["vltava.log.format"], level)
	if err != nil {
		return err
	}
	logger := slog.New(h)
	slog.SetDefault(logger)

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
	httpAddr, err := startHTTP(srv, cfg, logger)
	if err != nil {
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
	logger.Info("vltava started", "version", cli.Version().String(), "node.id", cfg.NodeID, "cluster.id", srv.Broker().ClusterID(), "log.dirs", dirs, "listeners", srv.Addrs(), "http", httpAddr)

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

// httpKey is the HTTP listener's config key.
const httpKey = "vltava.http.listener"

// startHTTP starts the HTTP listener vltava.http.listener names. The default address
// is a fixed port on loopback: if it is taken (another broker on this machine) the
// broker starts without it and says so; an address the operator set must bind.
func startHTTP(srv *server.Server, cfg config.Broker, logger *slog.Logger) (string, error) {
	addr := cfg.Values[httpKey]
	bound, err := srv.StartHTTP(addr)
	if err != nil && !cfg.IsSet(httpKey) {
		logger.Warn("no HTTP listener (metrics, health): the default address is taken; set vltava.http.listener or --http-listen to another address, or none",
			"addr", addr, "err", err)
		return "none", nil
	}
	if bound == "" {
		bound = "none"
	}
	return bound, err
}
