package tests

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authagent/authagent/ipc"
)

// strangerListener is another user's program on the agent's socket path. It creates what
// it is told to, listens, lets anyone connect, and prints every connection with every byte
// it read, until a connection brings listenerEnd.
const strangerListener = `package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	mkdir := flag.String("mkdir", "", "directory to create, open to all")
	link := flag.String("symlink", "", "LINK=TARGET: a symbolic link to create")
	flag.Parse()
	must := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if *mkdir != "" {
		must(os.Mkdir(*mkdir, 0o777))
		must(os.Chmod(*mkdir, 0o777))
	}
	if *link != "" {
		l, target, _ := strings.Cut(*link, "=")
		must(os.Symlink(target, l))
	}
	ln, err := net.Listen("unix", flag.Arg(0))
	must(err)
	must(os.Chmod(flag.Arg(0), 0o777))
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		must(err)
		// A client that wrote a request waits for the answer: stop reading after a while.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		if string(b) == "` + listenerEnd + `" {
			fmt.Println("end")
			return
		}
		fmt.Printf("conn %d %q\n", len(b), b)
	}
}
`

// listenerEnd ends strangerListener; it comes last, so every connection before it has
// been read.
const listenerEnd = "end-of-test"

// buildStrangerListener compiles strangerListener where another user can run it.
func buildStrangerListener(t *testing.T) string {
	t.Helper()
	dir := shortTempDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"go.mod": "module stranger\n\ngo 1.22\n", "main.go": strangerListener} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "listener")
	r := runIn(t, append(os.Environ(), "GOWORK=off", "GOFLAGS="), src, "", goTool, "build", "-o", bin, ".")
	if r.code != 0 {
		t.Fatalf("build the stranger's listener: %s", r)
	}
	return bin
}

// stranger is strangerListener running as another user.
type stranger struct {
	proc *process
	out  *syncBuffer
	sock string // where it listens now
}

func startStranger(t *testing.T, bin string, u osUser, args ...string) *stranger {
	t.Helper()
	s := &stranger{out: &syncBuffer{}, sock: args[len(args)-1]}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir = []string{"PATH=/usr/bin:/bin"}, "/"
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid}}
	s.proc = startProcess(t, cmd)
	waitFor(t, "the other user's listener is ready", func() bool {
		if s.proc.exited() {
			t.Fatalf("the other user's listener exited (%v):\n%s", s.proc.err, s.out)
		}
		return strings.Contains(s.out.String(), "ready\n")
	})
	return s
}

var connLine = regexp.MustCompile(`(?m)^conn (\d+) `)

// finish ends the listener and returns how many connections it got and what they sent.
func (s *stranger) finish(t *testing.T) (conns int, received int, out string) {
	t.Helper()
	c, err := net.Dial("unix", s.sock)
	if err != nil {
		t.Fatalf("reach the other user's listener: %v\n%s", err, s.out)
	}
	c.Write([]byte(listenerEnd))
	c.Close()
	select {
	case <-s.proc.done:
	case <-time.After(time.Minute):
		t.Fatalf("the other user's listener did not end:\n%s", s.out)
	}
	out = s.out.String()
	for _, m := range connLine.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		conns++
		received += n
	}
	return conns, received, out
}

// TestClientsRefuseAnotherUsersSocket: with AUTHAGENT_SOCK and XDG_RUNTIME_DIR unset,
// clients go to $TMPDIR/authagent-$UID/agent.sock. Another user gets there first — their
// directory, their symbolic link, or their listener on a socket in our directory — and
// every client, from the CLI and the helpers to the tray and a Go program, refuses to talk
// to it: it exits non-zero naming the other user, and the listener receives not one byte.
//
// Not parallel: addUser names the user after the process, and TestOtherUserForbidden,
// which is parallel, makes one too.
func TestClientsRefuseAnotherUsersSocket(t *testing.T) {
	needRoot(t)
	needTools(t, "useradd", "userdel", "dbus-daemon")
	other := addUser(t)
	bin := buildStrangerListener(t)
	secret := canary(t)
	owner := "user " + other.name + " (uid " + strconv.Itoa(int(other.uid))
	bus := startBus(t)

	for _, v := range []struct {
		name string
		// setup prepares tmp (our TMPDIR) so that ourDir/agent.sock reaches the other
		// user's listener, and starts it.
		setup      func(t *testing.T, tmp, ourDir string) *stranger
		viaConnect bool // clients connect, then refuse the server; else they refuse the directory
	}{{
		name: "their directory",
		setup: func(t *testing.T, tmp, ourDir string) *stranger {
			return startStranger(t, bin, other, "-mkdir", ourDir, filepath.Join(ourDir, "agent.sock"))
		},
	}, {
		name: "their symbolic link to their directory",
		setup: func(t *testing.T, tmp, ourDir string) *stranger {
			theirs := filepath.Join(tmp, "theirs")
			return startStranger(t, bin, other, "-mkdir", theirs, "-symlink", ourDir+"="+theirs, filepath.Join(theirs, "agent.sock"))
		},
	}, {
		name: "their listener in our open directory",
		setup: func(t *testing.T, tmp, ourDir string) *stranger {
			if err := os.Mkdir(ourDir, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(ourDir, 0o777); err != nil {
				t.Fatal(err)
			}
			return startStranger(t, bin, other, filepath.Join(ourDir, "agent.sock"))
		},
		viaConnect: true,
	}, {
		// Their socket moved into our private directory (a socket is found by its inode;
		// its listener stays theirs).
		name: "their socket in our private directory",
		setup: func(t *testing.T, tmp, ourDir string) *stranger {
			if err := os.Mkdir(ourDir, 0o700); err != nil {
				t.Fatal(err)
			}
			theirs := filepath.Join(tmp, "theirs")
			s := startStranger(t, bin, other, "-mkdir", theirs, filepath.Join(theirs, "agent.sock"))
			s.sock = filepath.Join(ourDir, "agent.sock")
			if err := os.Rename(filepath.Join(theirs, "agent.sock"), s.sock); err != nil {
				t.Fatal(err)
			}
			return s
		},
		viaConnect: true,
	}} {
		t.Run(v.name, func(t *testing.T) {
			base := shortTempDir(t)
			tmp := filepath.Join(base, "tmp")
			if err := os.Mkdir(tmp, 0o700); err != nil {
				t.Fatal(err)
			}
			// Like /tmp: everyone may create in it; only the owner removes.
			for p, mode := range map[string]os.FileMode{base: 0o755, tmp: 0o777 | os.ModeSticky} {
				if err := os.Chmod(p, mode); err != nil {
					t.Fatal(err)
				}
			}
			ourDir := filepath.Join(tmp, "authagent-"+strconv.Itoa(os.Getuid()))
			s := v.setup(t, tmp, ourDir)
			e := newEnv(t, nil).with("AUTHAGENT_SOCK", "").with("XDG_RUNTIME_DIR", "").with("TMPDIR", tmp)
			sock := filepath.Join(ourDir, "agent.sock")

			refused := func(what, msg string) {
				t.Helper()
				if !strings.Contains(msg, owner) {
					t.Errorf("%s: the message does not name the other user (%s…):\n%s", what, owner, msg)
				}
				if !strings.Contains(msg, sock) {
					t.Errorf("%s: the message does not name the socket %s:\n%s", what, sock, msg)
				}
				if strings.Contains(msg, secret) {
					t.Errorf("%s: the secret is in the message:\n%s", what, msg)
				}
			}
			for _, c := range []struct {
				stdin string
				args  []string
			}{
				{secret + "-add\n", []string{"add", "p", "--provider", "apikey", "--key-id", "k", "--header", "X-API-Key={secret}", "--host", "api.example.com"}},
				{secret + "-token\n", []string{"set-token", "p"}},
				{"", []string{"list"}},
				{"", []string{"status"}},
				{"", []string{"token", "p"}},
				{"", []string{"header", "p"}},
				{"", []string{"exec", "p", "--", "true"}},
				{"", []string{"curl", "p", "--", "https://api.example.com/"}},
				{"", []string{"sign", "p", "--method", "GET", "--url", "https://api.example.com/"}},
				{"", []string{"login", "p"}},
				{"", []string{"logout", "p"}},
				{"", []string{"remove", "p"}},
				{"", []string{"start"}},
				{"protocol=https\nhost=api.example.com\n\n", []string{"git-credential", "get"}},
				{"api.example.com\n", []string{"docker-credential", "get"}},
				{"", []string{"kube-credential", "p"}},
				{`{"uri":"https://api.example.com/x"}`, []string{"credential-helper", "get"}},
			} {
				what := "authagent " + strings.Join(c.args, " ")
				r := run(t, e, c.stdin, c.args...)
				if r.code == 0 {
					t.Errorf("%s: exit 0 against another user's socket: %s", what, r)
				}
				refused(what, r.stdout+r.stderr)
			}

			// A Go program: the zero values find the same socket.
			t.Setenv("AUTHAGENT_SOCK", "")
			t.Setenv("XDG_RUNTIME_DIR", "")
			t.Setenv("TMPDIR", tmp)
			ctx := context.Background()
			goSecret := secret + "-go"
			for name, call := range map[string]func() error{
				"ipc.Client.PutProfile": func() error {
					return (&ipc.Client{}).PutProfile(ctx, "p", ipc.ProfileSpec{Secret: &goSecret})
				},
				"ipc.Client.PushToken": func() error { return (&ipc.Client{}).PushToken(ctx, "p", goSecret, time.Time{}) },
				"ipc.Client.Credential": func() error {
					_, err := (&ipc.Client{}).Credential(ctx, "p")
					return err
				},
				"ipc.Transport": func() error {
					resp, err := (&http.Client{Transport: &ipc.Transport{}}).Get("https://api.example.com/x")
					if err == nil {
						resp.Body.Close()
					}
					return err
				},
				"ipc.PerRPCCredentials": func() error {
					_, err := (&ipc.PerRPCCredentials{}).GetRequestMetadata(ctx, "https://api.example.com/pkg.Service")
					return err
				},
			} {
				err := call()
				if !ipc.IsUntrustedServer(err) {
					t.Errorf("%s: %v, want an error that IsUntrustedServer recognises", name, err)
					continue
				}
				refused(name, err.Error())
			}

			// The tray keeps trying, and says why it does not follow the agent.
			// Not waitFor: a failure here must not skip the listener's count below.
			tp := startTray(t, e, bus, nil)
			for deadline := time.Now().Add(15 * time.Second); !strings.Contains(tp.log.String(), owner); time.Sleep(20 * time.Millisecond) {
				if tp.proc.exited() || time.Now().After(deadline) {
					t.Errorf("authagent tray did not say whose socket it refused within 15s (exited: %v):\n%s", tp.proc.exited(), tp.log)
					break
				}
			}
			tp.proc.terminate(5 * time.Second)

			conns, received, out := s.finish(t)
			if received != 0 || strings.Contains(out, secret) {
				t.Errorf("the other user's listener received %d bytes:\n%s", received, out)
			}
			if v.viaConnect && conns == 0 {
				t.Errorf("no client connected: the check on the listening process was not put to the test")
			}
			if !v.viaConnect && conns != 0 {
				t.Errorf("%d connections reached the other user's directory; clients should refuse it before connecting", conns)
			}
		})
	}
}
