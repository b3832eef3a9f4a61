package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sshdConfig is a private sshd on loopback: one key, root may log in with it, and remote
// Unix socket forwards (ssh -R /path:/path) replace a stale socket file.
const sshdConfig = `Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile none
AuthorizedKeysFile %s
StrictModes no
StreamLocalBindUnlink yes
AllowStreamLocalForwarding yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
`

// TestSSHForwardedSocket uses the agent from "another host" through OpenSSH socket
// forwarding: ssh -R REMOTE.sock:$AUTHAGENT_SOCK to a private sshd on loopback standing in
// for the remote machine, where `authagent token` with AUTHAGENT_SOCK=REMOTE.sock gets the
// token from the agent on this side.
func TestSSHForwardedSocket(t *testing.T) {
	t.Parallel()
	needTools(t, "ssh", "ssh-keygen")
	sshdPath, err := exec.LookPath("sshd")
	if err != nil {
		sshdPath = "/usr/sbin/sshd" // not on every PATH; scripts/deps.sh checks there too
		if _, err := os.Stat(sshdPath); err != nil {
			needTools(t, "sshd")
		}
	}
	sshdPath, _ = filepath.Abs(sshdPath) // sshd re-executes itself: it wants an absolute path
	// sshd runs as root and logs root in; CI runs as root.
	needRoot(t)
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	addPushProfile(t, e, "remote", "--host", "api.example.com")
	tok := "ssh-" + canary(t)
	pushToken(t, e, "remote", tok)

	dir := shortTempDir(t)
	sshEnv := []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	for _, k := range []string{"host_key", "client_key"} {
		r := runIn(t, sshEnv, dir, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", filepath.Join(dir, k))
		if r.code != 0 {
			t.Fatalf("ssh-keygen: %s", r)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	conf := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, fmt.Appendf(nil, sshdConfig, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys")), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	sshdLog := &syncBuffer{}
	sshd := exec.Command(sshdPath, "-D", "-e", "-f", conf)
	sshd.Env, sshd.Dir = sshEnv, dir
	sshd.Stdout, sshd.Stderr = sshdLog, sshdLog
	sshdProc := startProcess(t, sshd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sshd's log:\n%s", sshdLog)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if sshdProc.exited() {
			t.Fatalf("sshd exited at start (%v):\n%s", sshdProc.err, sshdLog)
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd does not listen on %s within 20s:\n%s", addr, sshdLog)
		}
		time.Sleep(20 * time.Millisecond)
	}

	remoteSock := filepath.Join(dir, "remote.sock")
	ssh := func(remoteCmd string) result {
		t.Helper()
		// The forward is set up before the session starts; the loop only guards against
		// a slow sshd.
		script := fmt.Sprintf(`for i in $(seq 100); do [ -S %[1]s ] && break; sleep 0.1; done; export AUTHAGENT_SOCK=%[1]s; %[2]s`, remoteSock, remoteCmd)
		return runIn(t, sshEnv, dir, "", "ssh", "-F", "/dev/null",
			"-i", filepath.Join(dir, "client_key"), "-p", fmt.Sprint(port),
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR",
			"-R", remoteSock+":"+e.sock(),
			"root@127.0.0.1", script)
	}

	r := ssh(authagentBin + " token remote")
	if r.code != 0 || r.stdout != tok+"\n" {
		t.Fatalf("authagent token remote on the far side of ssh -R: %s\nwant the token", r)
	}
	// Other clients work the same way: the git helper on the remote side.
	r = ssh(fmt.Sprintf(`printf 'protocol=https\nhost=api.example.com\n\n' | %s git-credential get`, authagentBin))
	if r.code != 0 || !strings.Contains(r.stdout, "password="+tok+"\n") {
		t.Errorf("the git helper on the far side of ssh -R: %s", r)
	}
	// The agent saw those connections as its own user's: on this side the connecting
	// process is ssh, running as the agent's user (root here).
	if strings.Contains(a.Log(), "refused connection") {
		t.Errorf("the agent refused a forwarded connection:\n%s", a.Log())
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
