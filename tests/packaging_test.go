package tests

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// repoRoot is the checkout the tests run in.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// verifyUnits runs systemd-analyze verify on user units, with the man pages the units
// point to generated from the CLI.
func verifyUnits(t *testing.T, environ []string, units ...string) {
	t.Helper()
	needTools(t, "systemd-analyze")
	tmp := shortTempDir(t)
	runtimeDir := filepath.Join(tmp, "run")
	os.MkdirAll(runtimeDir, 0o700)
	man := filepath.Join(tmp, "man")
	if r := runIn(t, os.Environ(), repoRoot(t), "", "go", "run", "-tags", "gendocs", "./cmd/authagent", "gen-docs", "--man", filepath.Join(man, "man1")); r.code != 0 {
		t.Fatalf("gen-docs: %s", r)
	}
	env := append(environ, "XDG_RUNTIME_DIR="+runtimeDir, "MANPATH="+man)
	r := runIn(t, env, tmp, "", "systemd-analyze", append([]string{"--user", "verify"}, units...)...)
	if r.code != 0 || strings.TrimSpace(r.stderr+r.stdout) != "" {
		t.Errorf("systemd-analyze verify %v: %s", units, r)
	}
}

func TestInstallUser(t *testing.T) {
	needTools(t, "git")
	e := newEnv(t, nil)
	os.MkdirAll(e.vars["HOME"], 0o700)
	// A stand-in for systemctl that records how it was called: there is no user manager here.
	bin := filepath.Join(e.dir, "fakebin")
	os.MkdirAll(bin, 0o755)
	calls := filepath.Join(e.dir, "systemctl.calls")
	os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\necho \"$*\" >> "+calls+"\n"), 0o755)
	environ := []string{}
	for _, kv := range e.environ() {
		if strings.HasPrefix(kv, "PATH=") {
			kv = "PATH=" + bin + ":" + strings.TrimPrefix(kv, "PATH=")
		}
		environ = append(environ, kv)
	}
	cfg := e.vars["XDG_CONFIG_HOME"]
	files := []string{
		filepath.Join(cfg, "systemd", "user", "authagent.socket"),
		filepath.Join(cfg, "systemd", "user", "authagent.service"),
		filepath.Join(cfg, "autostart", "authagent-tray.desktop"),
	}
	if r := runIn(t, environ, e.dir, "", authagentBin, "install", "--user", "--git-host", "git.example.com"); r.code != 0 {
		t.Fatalf("install --user: %s", r)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "/usr/bin/authagent") || (strings.Contains(f, ".service") && !strings.Contains(string(data), "ExecStart="+authagentBin+" serve")) {
			t.Errorf("%s does not run this binary:\n%s", f, data)
		}
	}
	verifyUnits(t, environ, files[0], files[1])
	got, _ := os.ReadFile(calls)
	if want := "--user daemon-reload\n--user enable --now authagent.socket\n"; string(got) != want {
		t.Errorf("systemctl calls:\n%s\nwant\n%s", got, want)
	}
	helper := runIn(t, environ, e.dir, "", "git", "config", "--global", "--get-all", "credential.https://git.example.com.helper")
	if !strings.Contains(helper.stdout, authagentBin+" git-credential") {
		t.Errorf("git helper not configured: %s", helper)
	}

	if r := runIn(t, environ, e.dir, "", authagentBin, "install", "--uninstall", "--git-host", "git.example.com"); r.code != 0 {
		t.Fatalf("install --uninstall: %s", r)
	}
	for _, f := range files {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left behind after --uninstall", f)
		}
	}
	got, _ = os.ReadFile(calls)
	if !strings.Contains(string(got), "--user disable --now authagent.socket authagent.service") {
		t.Errorf("uninstall did not disable the units:\n%s", got)
	}
	if r := runIn(t, environ, e.dir, "", "git", "config", "--global", "--get-all", "credential.https://git.example.com.helper"); r.code == 0 {
		t.Errorf("git helper still configured after --uninstall: %s", r)
	}
}

// dpkg runs dpkg with args, waiting while another program (apt, unattended-upgrades)
// holds the dpkg lock, as apt-get's DPkg::Lock::Timeout would: up to 5 minutes.
func dpkg(t *testing.T, dir string, args ...string) result {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		r := runIn(t, os.Environ(), dir, "", "dpkg", args...)
		if r.code == 0 || !strings.Contains(r.stderr, "lock") || time.Now().After(deadline) {
			return r
		}
		time.Sleep(time.Second)
	}
}

// TestDebPackage builds the .deb with nfpm, installs it with dpkg on this machine, checks
// what it put where, and removes it again. It needs root, as dpkg does.
func TestDebPackage(t *testing.T) {
	needRoot(t)
	needTools(t, "dpkg", "dpkg-deb", "man")
	root := repoRoot(t)
	r := runIn(t, os.Environ(), root, "", "bash", "scripts/package")
	if r.code != 0 {
		t.Fatalf("scripts/package: %s", r)
	}
	debs, _ := filepath.Glob(filepath.Join(root, "dist", "authagent_*.deb"))
	rpms, _ := filepath.Glob(filepath.Join(root, "dist", "authagent-*.rpm"))
	if len(debs) != 1 || len(rpms) != 1 {
		t.Fatalf("packages built: %v %v", debs, rpms)
	}
	if _, err := os.Stat("/usr/bin/authagent"); err == nil {
		t.Fatal("/usr/bin/authagent exists before the test installs the package; remove it first")
	}
	if r := dpkg(t, root, "-i", debs[0]); r.code != 0 {
		t.Fatalf("dpkg -i: %s", r)
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			runCmd(os.Environ(), root, "", "dpkg", "-r", "authagent")
		}
	})
	// /usr/bin/authagent is the one-shot front; it hands `version` to the full binary.
	if r := runIn(t, os.Environ(), root, "", "/usr/bin/authagent", "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "authagent 0.0.0") {
		t.Errorf("installed binary: %s", r)
	}
	for _, bin := range []string{"/usr/bin/authagent", "/usr/libexec/authagent/authagent"} {
		if err := checkStatic(bin); err != nil {
			t.Errorf("%s: %v", bin, err)
		}
	}
	for link, want := range map[string]string{
		"/usr/bin/git-credential-authagent":    "/usr/bin/authagent",
		"/usr/bin/docker-credential-authagent": "/usr/bin/authagent",
	} {
		if got, err := os.Readlink(link); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %s", link, got, err, want)
		}
	}
	installed := []string{
		"/usr/lib/systemd/user/authagent.socket",
		"/usr/lib/systemd/user/authagent.service",
		"/etc/xdg/autostart/authagent-tray.desktop",
		"/usr/share/bash-completion/completions/authagent",
		"/usr/share/zsh/vendor-completions/_authagent",
		"/usr/share/fish/vendor_completions.d/authagent.fish",
		"/usr/share/man/man1/authagent.1",
	}
	for _, f := range installed {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	if r := runIn(t, os.Environ(), root, "", "man", "-w", "authagent"); r.code != 0 {
		t.Errorf("man -w authagent: %s", r)
	}
	// git finds the helper through the link, by name.
	if r := runIn(t, os.Environ(), root, "protocol=https\nhost=nowhere.example\n\n", "/usr/bin/git-credential-authagent", "get"); r.code != 0 || r.stdout != "" {
		t.Errorf("git-credential-authagent get with no agent: %s", r)
	}
	verifyUnits(t, os.Environ(), installed[0], installed[1])

	if r := dpkg(t, root, "-r", "authagent"); r.code != 0 {
		t.Fatalf("dpkg -r: %s", r)
	}
	removed = true
	for _, f := range append(installed[:2], "/usr/bin/authagent", "/usr/libexec/authagent/authagent", "/usr/bin/git-credential-authagent") {
		if _, err := os.Lstat(f); !os.IsNotExist(err) {
			t.Errorf("%s left behind by dpkg -r", f)
		}
	}
	if r := runIn(t, os.Environ(), root, "", "dpkg-deb", "-I", debs[0]); !strings.Contains(r.stdout, "Package: authagent") {
		t.Errorf("dpkg-deb -I: %s", r)
	}
}
