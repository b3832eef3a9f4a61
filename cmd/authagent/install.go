package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/authagent/authagent/gitsetup"
	"github.com/authagent/authagent/packaging"
)

func newInstallCmd() *cobra.Command {
	var user, uninstall, noEnable bool
	var gitHosts []string
	cmd := &cobra.Command{
		Use:   "install --user [--git-host H]… | --uninstall",
		Short: "Start the agent and the tray at login for this user",
		Long: `Install authagent for the current user, without root: the systemd user units
authagent.socket and authagent.service (the agent starts on first use), the XDG autostart
entry that starts the tray at login, and with --git-host the git credential helper for those
hosts. The socket is enabled and started with systemctl --user unless --no-enable is given.
--uninstall stops and disables the units and removes what install wrote.

On macOS it writes launchd user agents to ~/Library/LaunchAgents (io.github.authagent.agent
runs the agent at login and restarts it after a crash; io.github.authagent.tray runs the
tray) and loads them with launchctl unless --no-enable. On Windows it creates two scheduled
tasks that run at your logon ("authagent agent", "authagent tray") and starts them unless
--no-enable.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !user && !uninstall {
				return usageError{"say --user (install for this user) or --uninstall"}
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			self, _ = filepath.EvalSymlinks(self)
			self = packaging.Front(self) // units and git run the one-shot front, when there is one
			if handled, err := installOS(self, uninstall, noEnable); handled {
				if err != nil {
					return err
				}
				return installGit(self, uninstall, gitHosts)
			}
			cfg, err := os.UserConfigDir()
			if err != nil {
				return err
			}
			files := map[string]string{
				"systemd/authagent.socket":   filepath.Join(cfg, "systemd", "user", "authagent.socket"),
				"systemd/authagent.service":  filepath.Join(cfg, "systemd", "user", "authagent.service"),
				"xdg/authagent-tray.desktop": filepath.Join(cfg, "autostart", "authagent-tray.desktop"),
			}
			if uninstall {
				if !noEnable {
					systemctl("disable", "--now", "authagent.socket", "authagent.service")
				}
				for _, dst := range files {
					if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
						return err
					}
					fmt.Fprintln(os.Stderr, "removed", dst)
				}
				if !noEnable {
					systemctl("daemon-reload")
				}
				return installGit(self, true, gitHosts)
			}
			for src, dst := range files {
				data, err := packaging.Files.ReadFile(src)
				if err != nil {
					return err
				}
				text := strings.ReplaceAll(string(data), packaging.InstalledBinary, self)
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(dst, []byte(text), 0o644); err != nil {
					return err
				}
				fmt.Fprintln(os.Stderr, "wrote", dst)
			}
			if err := installGit(self, false, gitHosts); err != nil {
				return err
			}
			if noEnable {
				return nil
			}
			if err := systemctl("daemon-reload"); err != nil {
				return err
			}
			return systemctl("enable", "--now", "authagent.socket")
		},
	}
	cmd.Flags().BoolVar(&user, "user", false, "install for the current user (no root needed)")
	cmd.Flags().BoolVar(&uninstall, "uninstall", false, "undo the install")
	cmd.Flags().BoolVar(&noEnable, "no-enable", false, "only write the files; do not run systemctl")
	cmd.Flags().StringArrayVar(&gitHosts, "git-host", nil, "also make authagent git's credential helper for this host (repeatable)")
	return cmd
}

// installGit makes authagent (self) git's credential helper for hosts, or with uninstall
// takes it back.
func installGit(self string, uninstall bool, hosts []string) error {
	for _, h := range hosts {
		if uninstall {
			gitsetup.UnsetQuietly(h)
			continue
		}
		if err := gitsetup.Set(os.Stderr, h, self); err != nil {
			return err
		}
	}
	return nil
}

func systemctl(args ...string) error {
	out, err := exec.Command("systemctl", append([]string{"--user"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl --user %s: %v: %s\n(no systemd user manager? start the agent with `eval \"$(authagent start)\"` instead, or install with --no-enable)",
			strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
