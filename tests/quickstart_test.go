package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's quick start on a machine without Go: scripts/demo, run with the official Go
// (/usr/local/go) hidden and no Go on PATH, must install a Go that can build authagent
// (Debian's golang-1.23-go from bookworm-backports, which fetches the release go.mod names)
// and show the agent working. A private mount namespace hides /usr/local/go from the
// scripts only.
func TestQuickStartWithoutGo(t *testing.T) {
	t.Parallel()
	needRoot(t)
	needTools(t, "unshare", "mount", "git", "dbus-daemon", "gnome-keyring-daemon")
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		if inCI() {
			t.Fatal("CI runs on Debian 12; /etc/debian_version is missing")
		}
		t.Skip("the scripts install Go from Debian's backports; this is not Debian")
	}
	repo := copyWorkTree(t)
	empty := t.TempDir()
	script := `set -e
[ -d /usr/local/go ] && mount --bind "$EMPTY" /usr/local/go
if command -v go >/dev/null; then echo "go still on PATH: $(command -v go)"; exit 3; fi
./scripts/demo
. scripts/lib.sh
use_go
echo "go used: $(command -v go)"
go version
`
	cmd := exec.Command("unshare", "--mount", "bash", "-c", script)
	cmd.Dir = repo
	// Keep the module and build caches: the scripts must find a Go, not rebuild the world.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + t.TempDir(), "LANG=C.UTF-8",
		"EMPTY=" + empty, "GOMODCACHE=" + goEnv(t, "GOMODCACHE"), "GOCACHE=" + goEnv(t, "GOCACHE")}
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil {
		t.Fatalf("scripts/demo without Go: %v\n%s", err, text)
	}
	for _, want := range []string{
		"X-API-Key: demo-key-0123456789",                    // the demo's headers, served
		"secret store: keyring (secrets survive a restart)", // after the restart, from the keyring
		"go used: /usr/lib/go-1.2",                          // Debian's Go, not the hidden one
		"go version go" + goModVersion(t, repo),             // which fetched go.mod's release
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "X-API-Key: demo-key-0123456789"); n < 2 {
		t.Errorf("the key was served %d times, want before and after the restart:\n%s", n, text)
	}
	// The demo ends with the audit log: curl's use by URL is there, named, without the key.
	_, audit, _ := strings.Cut(text, "authagent audit --profile hub")
	if !regexp.MustCompile(`credential\s+ok\s+api\.example\.com\s+curl \(\d+\)`).MatchString(audit) || strings.Contains(audit, "demo-key") {
		t.Errorf("the demo's audit log lacks curl's use, or holds the key:\n%s", audit)
	}
}

// copyWorkTree copies the repository's tracked and new files (as they are in the working
// tree) to a temporary directory, so scripts that build into the tree leave it alone.
func copyWorkTree(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dst := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		st, err := os.Lstat(src)
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted in the working tree, or a symlink the scripts do not need
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func goEnv(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", key, err)
	}
	return strings.TrimSpace(string(out))
}

func goModVersion(t *testing.T, repo string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("go.mod has no go line")
	return ""
}
