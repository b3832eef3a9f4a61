// Package gitsetup makes authagent git's credential helper for hosts in the user's global
// git config (`authagent git setup`, `install --git-host`), and takes those entries out
// again (`git setup --remove`, `remove`, `install --uninstall`). It runs `git config`; it
// never touches an entry of another helper when it removes its own.
package gitsetup

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"

	"github.com/authagent/authagent/providers"
)

// HelperKeys are the git config keys that make a credential helper apply to host (a host
// name, with a port if it has one): https://host, and http://host too when host is
// loopback, where the agent allows plain http.
func HelperKeys(host string) []string {
	keys := []string{"credential.https://" + host + ".helper"}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if providers.IsLoopback(h) {
		keys = append(keys, "credential.http://"+host+".helper")
	}
	return keys
}

// Set makes the program at helper (authagent's path) git's only credential helper for
// host: each key first gets an empty entry, so that no other helper (such as "store")
// writes the agent's short-lived tokens to disk. It says on w what it set.
func Set(w io.Writer, host, helper string) error {
	for _, key := range HelperKeys(host) {
		gitConfig("--global", "--unset-all", key) // start clean; missing is fine
		if err := gitConfig("--global", "--add", key, ""); err != nil {
			return err
		}
		if err := gitConfig("--global", "--add", key, "!"+ShellQuote(helper)+" git-credential"); err != nil {
			return err
		}
		fmt.Fprintf(w, "git: %s set\n", key)
	}
	return nil
}

// Unset removes every helper entry of host's keys, authagent's or not (`git setup
// --remove`, which the user asked for by host). A missing https entry is an error.
func Unset(w io.Writer, host string) error {
	keys := HelperKeys(host)
	for _, key := range keys {
		if err := gitConfig("--global", "--unset-all", key); err != nil && key == keys[0] {
			return err
		}
		fmt.Fprintf(w, "git: %s removed\n", key)
	}
	return nil
}

// UnsetQuietly removes host's helper entries and says nothing, whatever is there.
func UnsetQuietly(host string) {
	for _, key := range HelperKeys(host) {
		gitConfig("--global", "--unset-all", key)
	}
}

// RemoveOurs takes the entries Set wrote for hosts out of the global git config, and
// only those: a host whose entries name no authagent helper is left alone. It says on w
// what it did; without git it does nothing.
func RemoveOurs(w io.Writer, hosts []string) {
	if _, err := exec.LookPath("git"); err != nil || len(hosts) == 0 {
		return
	}
	for _, h := range hosts {
		for _, key := range HelperKeys(h) {
			out, err := exec.Command("git", "config", "--global", "--get-all", key).Output()
			if err != nil || !isOurs(string(out)) {
				continue // no such entry (exit 1), or not ours
			}
			if err := gitConfig("--global", "--unset-all", key); err != nil {
				fmt.Fprintln(w, "warning:", err)
				continue
			}
			fmt.Fprintf(w, "git: %s removed\n", key)
		}
	}
}

// isOurs reports whether the values of a credential.URL.helper key (one a line) hold the
// helper Set writes.
func isOurs(values string) bool {
	for v := range strings.Lines(values) {
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "!") && strings.Contains(v, "authagent") && strings.HasSuffix(v, " git-credential") {
			return true
		}
	}
	return false
}

func gitConfig(args ...string) error {
	out, err := exec.Command("git", append([]string{"config"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("git config %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ShellQuote quotes s for a POSIX shell, leaving plain paths as they are.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
