package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/agent/audit"
	"github.com/authagent/authagent/confirm"
	"github.com/authagent/authagent/ipc/server"
	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
	"github.com/authagent/authagent/providers/devicecode"
	"github.com/authagent/authagent/providers/externaljwt"
)

// factories are the credential kinds this build knows. Commands that externaljwt profiles
// run are killed when stop ends, so they do not hold up the agent's shutdown.
func factories(stop context.Context) map[string]providers.Factory {
	return map[string]providers.Factory{
		apikey.Name:         apikey.NewFactory(stop),
		devicecode.Name:     devicecode.New,
		devicecode.OIDCName: devicecode.New, // the same kind; login defaults to "auto"
		externaljwt.Name:    externaljwt.NewFactory(stop),
	}
}

func newServeCmd(c *cli) *cobra.Command {
	var configPath, logLevel string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the agent in the foreground",
		Long: `Run the agent in the foreground, logging to stderr. It listens on the socket
($AUTHAGENT_SOCK, else $XDG_RUNTIME_DIR/authagent/agent.sock, else /tmp/authagent-$UID/),
reloads its config on SIGHUP or ` + "`authagent reload`" + ` and stops on SIGINT, SIGTERM or
` + "`authagent stop`" + `.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{fmt.Sprintf("--log-level: %v", err)}
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			return serve(cmd.Context(), log, c.socket, configPath)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "config file (default $AUTHAGENT_CONFIG, else $XDG_CONFIG_HOME/authagent/config.toml)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func serve(ctx context.Context, log *slog.Logger, socket, configPath string) error {
	// The agent waits on sockets and timers. With one P the goroutine a request wakes runs
	// on the thread that polled it instead of waking another one: p50 of a cached
	// credential request 86µs → 46µs on a 2-core VM. GOMAXPROCS in the environment wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if err := agent.Harden(); err != nil {
		log.Warn("could not harden the process", "error", err)
	}
	if configPath == "" {
		p, err := agent.DefaultConfigPath()
		if err != nil {
			return err
		}
		configPath = p
	}
	cfg, err := agent.LoadConfig(configPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// POST /v1/stop ends the agent as SIGTERM does.
	ctx, stopRequested := context.WithCancel(ctx)
	defer stopRequested()
	store, err := agent.OpenSecretStore(ctx, cfg.SecretStore, log)
	if err != nil {
		return err
	}
	// The audit log is not worth refusing to serve over; the log says it is missing.
	var auditor agent.Auditor
	var auditReader server.AuditReader
	if al, err := openAuditLog(log); err != nil {
		log.Error("no audit log: uses of profiles are not recorded", "error", err)
	} else {
		defer al.Close()
		auditor, auditReader = al, al
	}
	a, err := agent.New(agent.Options{
		Config:    cfg,
		Store:     store,
		Providers: factories(ctx),
		Logger:    log,
		Version:   version,
		Audit:     auditor,
		Confirmer: &confirm.Desktop{}, // profiles with confirm set ask on the session bus
	})
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := server.ActivatedListener()
	if err != nil {
		return err
	}
	if ln != nil {
		socket = ln.Addr().String() + " (from systemd)"
	} else {
		if ln, err = server.Listen(socket); err != nil {
			return err
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := a.Reload(); err != nil {
					log.Error("config reload failed; keeping the old config", "path", configPath, "error", err)
				}
			}
		}
	}()
	info := store.Info()
	log.Info("agent listening", "socket", socket, "config", configPath, "secret_store", info.Kind, "persistent", info.Persistent, "pid", os.Getpid(), "version", version)
	stopNotify := notifySystemd(ctx, log, fmt.Sprintf("serving %d profiles; secrets in %s", len(a.Profiles()), info.Kind))
	err = (&server.Server{Agent: a, Log: log, Stop: stopRequested, Audit: auditReader}).Serve(ctx, ln)
	stopNotify()
	log.Info("agent stopped")
	return err
}

// notifySystemd tells systemd the agent is ready, pings its watchdog when WatchdogSec is
// set, and says STOPPING=1 when ctx ends. Outside systemd (no NOTIFY_SOCKET) it does
// nothing. The returned func ends the notifier (saying STOPPING=1) and waits for it.
func notifySystemd(ctx context.Context, log *slog.Logger, status string) func() {
	if ok, err := daemon.SdNotify(false, daemon.SdNotifyReady+"\nSTATUS="+status); !ok {
		if err != nil {
			log.Warn("sd_notify failed", "error", err)
		}
		return func() {}
	}
	interval, _ := daemon.SdWatchdogEnabled(false)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var tick <-chan time.Time
		if interval > 0 {
			t := time.NewTicker(interval / 2)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-ctx.Done():
				daemon.SdNotify(false, daemon.SdNotifyStopping)
				return
			case <-tick:
				daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// openAuditLog opens $XDG_STATE_HOME/authagent/audit.log (see package audit).
func openAuditLog(log *slog.Logger) (*audit.Log, error) {
	path, err := audit.DefaultPath()
	if err != nil {
		return nil, err
	}
	return audit.Open(path, audit.Options{Logger: log})
}
