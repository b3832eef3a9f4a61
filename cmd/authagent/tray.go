package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/assets"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/tray"
)

func newTrayCmd(c *cli) *cobra.Command {
	var panel, configPath, logLevel string
	var iconSize int
	cmd := &cobra.Command{
		Use:   "tray",
		Short: "Show the agent's state in the system tray, and log in from there",
		Long: `Show an icon in the system tray (StatusNotifierItem) with the worst state over all
profiles, and a menu with each profile's state, Log in and Log out. Log in runs the device
login in the agent, opens the browser and shows the code in a desktop notification. The
tray holds no secrets; when no agent answers it offers to start one, and it reconnects when
the agent comes back.

--panel picks the icons for a light or a dark panel; auto asks the desktop's colour scheme.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{fmt.Sprintf("--log-level: %v", err)}
			}
			p := assets.Panel(panel)
			if p != assets.LightPanel && p != assets.DarkPanel && panel != "auto" {
				return usageError{fmt.Sprintf("--panel %q: use light, dark or auto", panel)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			desk, err := openDesktop()
			if err != nil {
				return err
			}
			defer desk.close()
			if panel == "auto" {
				p = desk.panel(ctx)
			}
			openPath := configPath
			if openPath == "" {
				if openPath, err = agent.DefaultConfigPath(); err != nil {
					return err
				}
			}
			sock := c.socket
			t := tray.New(tray.Options{
				Client:     c.client,
				Notifier:   desk.notifier,
				ConfigPath: openPath,
				Log:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
				StartAgent: func(ctx context.Context) error {
					_, err := spawnAgent(ctx, &ipc.Client{Socket: sock}, sock, configPath)
					return err
				},
			})
			return tray.Show(ctx, t, tray.ShowOptions{Panel: p, IconSize: iconSize})
		},
	}
	cmd.Flags().StringVar(&panel, "panel", "auto", "icons for a light or dark panel: light, dark or auto")
	cmd.Flags().IntVar(&iconSize, "icon-size", 22, "icon size in pixels; the panel scales it")
	cmd.Flags().StringVar(&configPath, "config", "", "config file to open, and to start an agent with (default $AUTHAGENT_CONFIG, else $XDG_CONFIG_HOME/authagent/config.toml)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// desktop is what the tray uses of the desktop session besides the icon itself.
type desktop struct {
	notifier tray.Notifier                      // nil: no notifications
	panel    func(context.Context) assets.Panel // the panel's colour scheme, for --panel auto
	close    func()
}
