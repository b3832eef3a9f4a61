package authagent_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestClientDeps: a program that only talks to the agent links none of it. Package ipc
// (the Go client), and the tray, which is a pure client, depend on neither the agent nor
// what only the agent needs (the keyring, the config file's TOML, systemd); ipc does not
// pull in the tray's UI either. ipc/wire and the one-shot front (the credential helpers'
// binary) link no net/http, and the front no CLI framework or UI. The lists come from
// `go list -deps`, as the linker sees them.
func TestClientDeps(t *testing.T) {
	agentOnly := []string{
		"github.com/authagent/authagent/agent",
		"github.com/authagent/authagent/ipc/server",
		"github.com/authagent/authagent/providers",
		"github.com/zalando/go-keyring",
		"github.com/pelletier/go-toml",
		"github.com/coreos/go-systemd",
	}
	for _, tc := range []struct {
		pkg       string
		forbidden []string
	}{
		{"./ipc", append(slices.Clone(agentOnly), "fyne.io/systray")},
		{"./ipc/wire", append(slices.Clone(agentOnly), "fyne.io/systray", "net/http")},
		{"./tray", agentOnly},
		// The one-shot front starts as fast as it does because it links only this much.
		{"./cmd/authagent-oneshot", append(slices.Clone(agentOnly), "fyne.io/systray", "github.com/godbus/dbus", "net/http",
			"github.com/spf13/cobra", "github.com/authagent/authagent/tray")},
	} {
		for _, dep := range goListDeps(t, tc.pkg) {
			for _, f := range tc.forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s depends on %s", tc.pkg, dep)
				}
			}
		}
	}
}

// goListDeps lists the packages pkg depends on, itself included, for this platform.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	return strings.Fields(string(out))
}
