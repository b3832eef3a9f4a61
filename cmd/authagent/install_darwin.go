package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/authagent/authagent/packaging"
	"github.com/authagent/authagent/tray"
)

// installOS writes (or removes) the launchd user agents that start the agent and the tray
// at login, and loads (unloads) them with launchctl unless noEnable.
func installOS(self string, uninstall, noEnable bool) (bool, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return true, err
	}
	logs := filepath.Join(home, "Library", "Logs", "authagent")
	jobs := []packaging.LaunchdJob{packaging.LaunchdAgent(self, filepath.Join(logs, "agent.log"))}
	if tray.Built || uninstall {
		jobs = append(jobs, packaging.LaunchdTray(self, filepath.Join(logs, "tray.log")))
	} else {
		fmt.Fprintln(os.Stderr, "this authagent was built without the tray (it needs cgo on macOS): no tray at login")
	}
	domain := "gui/" + strconv.Itoa(os.Getuid())
	for _, j := range jobs {
		path := filepath.Join(home, "Library", "LaunchAgents", j.Label+".plist")
		if !noEnable {
			launchctl("bootout", domain+"/"+j.Label) // not loaded is fine: there is nothing to stop
		}
		if uninstall {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return true, err
			}
			fmt.Fprintln(os.Stderr, "removed", path)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return true, err
		}
		if err := os.MkdirAll(logs, 0o700); err != nil {
			return true, err
		}
		if err := os.WriteFile(path, j.Plist(), 0o644); err != nil {
			return true, err
		}
		fmt.Fprintln(os.Stderr, "wrote", path)
		if !noEnable {
			if err := launchctl("bootstrap", domain, path); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

func launchctl(args ...string) error {
	out, err := exec.Command("launchctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("launchctl %s: %v: %s\n(install with --no-enable to only write the files; they load at the next login)",
			strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
