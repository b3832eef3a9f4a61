package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strings"

	"github.com/authagent/authagent/packaging"
)

// installOS creates (or deletes) the scheduled tasks that start the agent and the tray
// when this user logs on, and runs them now unless noEnable.
func installOS(self string, uninstall, noEnable bool) (bool, error) {
	u, err := user.Current()
	if err != nil {
		return true, err
	}
	sid := u.Uid // a SID on Windows
	tasks := []struct {
		name string
		task packaging.LogonTask
	}{
		{packaging.TaskAgentName, packaging.TaskAgent(self, sid)},
		{packaging.TaskTrayName, packaging.TaskTray(self, sid)},
	}
	for _, t := range tasks {
		if uninstall {
			schtasks("/End", "/TN", t.name) // not running is fine
			if err := schtasks("/Delete", "/F", "/TN", t.name); err != nil {
				fmt.Fprintln(os.Stderr, err)
				continue
			}
			fmt.Fprintln(os.Stderr, "deleted scheduled task", t.name)
			continue
		}
		f, err := os.CreateTemp("", "authagent-task-*.xml")
		if err != nil {
			return true, err
		}
		_, werr := f.Write(t.task.XML())
		cerr := f.Close()
		if werr == nil && cerr == nil {
			werr = schtasks("/Create", "/F", "/TN", t.name, "/XML", f.Name())
		}
		os.Remove(f.Name())
		if werr != nil {
			return true, werr
		}
		if cerr != nil {
			return true, cerr
		}
		fmt.Fprintln(os.Stderr, "created scheduled task", t.name, "(at logon)")
		if !noEnable {
			if err := schtasks("/Run", "/TN", t.name); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

func schtasks(args ...string) error {
	out, err := exec.Command("schtasks", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("schtasks %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
