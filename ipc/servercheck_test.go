package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/ipc/wire"
)

// recorder listens on a Unix socket the way a stranger's listener would, and writes down
// every connection and every byte it receives.
type recorder struct {
	sock string
	ln   net.Listener

	mu       sync.Mutex
	conns    int
	got      []byte
	sentinel chan struct{} // closed when the connection of result arrives
	done     sync.WaitGroup
}

// endOfTest is what result sends to find the end of the listen queue.
const endOfTest = "end-of-test"

func newRecorder(t *testing.T, sock string) *recorder {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{sock: sock, ln: ln, sentinel: make(chan struct{})}
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.done.Add(1)
			go func() {
				defer r.done.Done()
				defer c.Close()
				// A client that writes waits for an answer: stop reading after a while so
				// that the old, trusting client fails the test instead of hanging it.
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				b, _ := io.ReadAll(c)
				r.mu.Lock()
				defer r.mu.Unlock()
				if string(b) == endOfTest {
					close(r.sentinel)
					return
				}
				r.conns++
				r.got = append(r.got, b...)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); r.done.Wait() })
	return r
}

// result reports what the recorder got. It first sends a connection of its own and waits
// for it, so every connection queued before it has been accepted; then it stops.
func (r *recorder) result(t *testing.T) (conns int, got []byte) {
	t.Helper()
	c, err := net.Dial("unix", r.sock)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, endOfTest)
	c.Close()
	<-r.sentinel
	r.ln.Close()
	r.done.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns, r.got
}

// clientCalls are the ways a Go program reaches the agent: each must be refused with the
// same error before it sends anything.
func clientCalls(c *ipc.Client) map[string]func(ctx context.Context) error {
	secret := canary + "-put"
	return map[string]func(ctx context.Context) error{
		"Status": func(ctx context.Context) error { _, err := c.Status(ctx); return err },
		"PutProfile": func(ctx context.Context) error {
			return c.PutProfile(ctx, "p", ipc.ProfileSpec{Secret: &secret})
		},
		"PushToken":  func(ctx context.Context) error { return c.PushToken(ctx, "p", canary+"-push", time.Time{}) },
		"Credential": func(ctx context.Context) error { _, err := c.Credential(ctx, "p"); return err },
		"Watch":      func(ctx context.Context) error { _, err := c.Watch(ctx, true); return err },
		"Transport": func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/x", nil)
			if err != nil {
				return err
			}
			base := roundTripFunc(func(*http.Request) (*http.Response, error) {
				return nil, errors.New("the Transport sent the request on without a credential")
			})
			_, err = (&ipc.Transport{Client: c, Base: base}).RoundTrip(req)
			return err
		},
		"PerRPCCredentials": func(ctx context.Context) error {
			_, err := (&ipc.PerRPCCredentials{Client: c, Profile: "p"}).GetRequestMetadata(ctx, "https://api.example.com/pkg.Service")
			return err
		},
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestClientRefusesAnotherUsersServer(t *testing.T) {
	me := os.Geteuid()
	other := me + 1000 // no real user needed: the check's view of the world is injected
	meUser, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	otherOwner := "uid " + strconv.Itoa(other)
	if u, err := user.LookupId(strconv.Itoa(other)); err == nil {
		otherOwner = "user " + u.Username + " (" + otherOwner + ")"
	}
	for _, tc := range []struct {
		name string
		// check plays the situation; dir is the socket's directory.
		check     func(dir string) wire.ServerCheck
		linked    bool // the socket's directory is a symbolic link to a real one
		wantConns bool // the client gets as far as connecting, and refuses the server
		wantUID   int
		wantErr   error    // errors.Is target, if any
		wantIn    []string // in the message, besides the socket path and "nothing was sent"
	}{{
		// The real SO_PEERCRED answer (our own uid) against a client that expects
		// another: the server check, not the directory, refuses it.
		name: "server runs as another user",
		check: func(string) wire.ServerCheck {
			return wire.ServerCheck{UID: func() int { return other },
				Owner: func(string, bool) (int, error) { return other, nil }}
		},
		wantConns: true,
		wantUID:   me,
		wantIn:    []string{"served by user " + meUser.Username + " (uid " + strconv.Itoa(me) + ", process " + strconv.Itoa(os.Getpid()) + ")", "not by you (uid " + strconv.Itoa(other) + ")", "AUTHAGENT_SOCK"},
	}, {
		name: "server's user unknown on this OS",
		check: func(string) wire.ServerCheck {
			return wire.ServerCheck{Peer: func(net.Conn) (wire.Peer, error) { return wire.Peer{}, ipc.ErrNotImplemented }}
		},
		wantConns: true,
		wantUID:   -1,
		wantErr:   ipc.ErrNotImplemented,
		wantIn:    []string{"cannot tell which user serves it", "not implemented"},
	}, {
		name: "directory of another user",
		check: func(dir string) wire.ServerCheck {
			return wire.ServerCheck{Owner: func(p string, _ bool) (int, error) {
				if p == dir {
					return other, nil
				}
				return me, nil
			}}
		},
		wantUID: other,
		wantIn:  []string{"its directory", "belongs to " + otherOwner + ",", "not to you (uid " + strconv.Itoa(me) + ")", "Remove", "AUTHAGENT_SOCK"},
	}, {
		name: "directory is another user's symbolic link",
		check: func(dir string) wire.ServerCheck {
			return wire.ServerCheck{Owner: func(p string, follow bool) (int, error) {
				if p == dir && !follow {
					return other, nil
				}
				return me, nil
			}}
		},
		linked:  true,
		wantUID: other,
		wantIn:  []string{"belongs to " + otherOwner + ","},
	}, {
		name: "our symbolic link to another user's directory",
		check: func(dir string) wire.ServerCheck {
			return wire.ServerCheck{Owner: func(p string, follow bool) (int, error) {
				if p == dir && follow {
					return other, nil
				}
				return me, nil
			}}
		},
		linked:  true,
		wantUID: other,
		wantIn:  []string{"leads to", "which belongs to " + otherOwner + ","},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			real := filepath.Join(base, "real")
			dir := real
			if tc.linked {
				if err := os.Mkdir(real, 0o700); err != nil {
					t.Fatal(err)
				}
				dir = filepath.Join(base, "link")
				if err := os.Symlink(real, dir); err != nil {
					t.Fatal(err)
				}
			}
			rec := newRecorder(t, filepath.Join(dir, "agent.sock"))
			c := &ipc.Client{Socket: rec.sock}
			ipc.SetServerCheck(c, tc.check(dir))
			for call, do := range clientCalls(c) {
				err := do(context.Background())
				var ue *ipc.UntrustedServerError
				if !errors.As(err, &ue) || !ipc.IsUntrustedServer(err) {
					t.Errorf("%s: %v, want an *UntrustedServerError", call, err)
					continue
				}
				if ue.UID != tc.wantUID {
					t.Errorf("%s: error names uid %d, want %d", call, ue.UID, tc.wantUID)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("%s: %v, want it to wrap %v", call, err, tc.wantErr)
				}
				if errors.Is(err, ipc.ErrNoAgent) {
					t.Errorf("%s: %v is ErrNoAgent: helpers would take it for no agent and go quiet", call, err)
				}
				msg := err.Error()
				for _, want := range append([]string{rec.sock, "nothing was sent"}, tc.wantIn...) {
					if !strings.Contains(msg, want) {
						t.Errorf("%s: message %q does not say %q", call, msg, want)
					}
				}
				if tc.linked && !strings.Contains(msg, dir) {
					t.Errorf("%s: message %q does not name the link %s", call, msg, dir)
				}
			}
			conns, got := rec.result(t)
			if len(got) != 0 {
				t.Errorf("the stranger's listener received %d bytes:\n%s", len(got), got)
			}
			if tc.wantConns && conns == 0 {
				t.Errorf("no connection reached the listener: the server check was never put to the test")
			}
			if !tc.wantConns && conns != 0 {
				t.Errorf("%d connections reached the listener; the directory check should refuse before dialling", conns)
			}
		})
	}
}

// The checks pass for the user's own agent, in a directory of the user's or root's, through
// the zero-value Client, Transport and PerRPCCredentials on the default socket path.
func TestClientTrustsOwnAgent(t *testing.T) {
	t.Setenv("AUTHAGENT_SOCK", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("TMPDIR", t.TempDir())
	want := filepath.Join(os.Getenv("TMPDIR"), "authagent-"+strconv.Itoa(os.Getuid()), "agent.sock")
	switch runtime.GOOS {
	case "darwin": // a short home: a socket path has at most 104 bytes there
		home, err := os.MkdirTemp("/tmp", "home")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(home) })
		t.Setenv("HOME", home)
		want = filepath.Join(home, "Library", "Application Support", "authagent", "agent.sock")
	case "windows":
		t.Setenv("LOCALAPPDATA", t.TempDir())
		want = filepath.Join(os.Getenv("LOCALAPPDATA"), "authagent", "agent.sock")
	}
	sock := ipc.DefaultSocketPath()
	if sock != want {
		t.Fatalf("DefaultSocketPath() = %s, want %s", sock, want)
	}
	e := startServerOn(t, sock)
	ctx := context.Background()
	if _, err := (&ipc.Client{}).Status(ctx); err != nil {
		t.Errorf("zero Client: %v", err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/x", nil)
	var seen string
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = r.Header.Get("X-API-Key")
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	if _, err := (&ipc.Transport{Base: base}).RoundTrip(req); err != nil || seen != canary {
		t.Errorf("zero Transport: %v, header %q", err, seen)
	}
	if md, err := (&ipc.PerRPCCredentials{}).GetRequestMetadata(ctx, "https://api.example.com/pkg.S"); err != nil || md["x-api-key"] != canary {
		t.Errorf("zero PerRPCCredentials: %v, %v", err, md)
	}

	// A directory of root's is trusted as the user's own (AUTHAGENT_SOCK=/tmp/x.sock).
	c := &ipc.Client{Socket: e.sock}
	ipc.SetServerCheck(c, wire.ServerCheck{Owner: func(string, bool) (int, error) { return 0, nil }})
	if _, err := c.Status(ctx); err != nil {
		t.Errorf("socket in a directory of root's: %v", err)
	}
}

// Trust is not carried over: each new connection is checked again, so an agent replaced by
// someone else's listener on the same path is refused.
func TestServerCheckedOnEveryConnection(t *testing.T) {
	e := startServer(t)
	var checks atomic.Int32
	var stranger atomic.Bool
	c := &ipc.Client{Socket: e.sock}
	ipc.SetServerCheck(c, wire.ServerCheck{Peer: func(conn net.Conn) (wire.Peer, error) {
		checks.Add(1)
		p, err := wire.PeerOf(conn)
		if stranger.Load() {
			p.UID += 1000
		}
		return p, err
	}})
	ctx := context.Background()
	for range 3 {
		if _, err := c.Status(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := checks.Load(); got != 1 {
		t.Errorf("%d checks for three requests on one kept-alive connection, want 1", got)
	}
	c.CloseIdleConnections()
	stranger.Store(true)
	if _, err := c.Status(ctx); !ipc.IsUntrustedServer(err) {
		t.Errorf("new connection to a stranger's server: %v, want refused", err)
	}
	if got := checks.Load(); got != 2 {
		t.Errorf("%d checks after a second connection, want 2", got)
	}
}

// A Dial that returns something other than a Unix socket cannot be checked, so it is refused.
func TestCustomDialUncheckable(t *testing.T) {
	read := make(chan int, 1)
	c := &ipc.Client{Socket: "/nonexistent/agent.sock", Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		a, b := net.Pipe()
		go func() {
			defer b.Close()
			b.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _ := io.Copy(io.Discard, b)
			read <- int(n)
		}()
		return a, nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Status(ctx)
	if !ipc.IsUntrustedServer(err) || !strings.Contains(err.Error(), "not a unix socket") {
		t.Errorf("Status over a pipe: %v, want refused as uncheckable", err)
	}
	if n := <-read; n != 0 {
		t.Errorf("the other end of the pipe read %d bytes, want none", n)
	}
}

func TestIsUntrustedServer(t *testing.T) {
	ue := &ipc.UntrustedServerError{Socket: "/s", Path: "/s", UID: 7}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{ipc.ErrNoAgent, false},
		{&ipc.Error{Code: ipc.CodeForbidden}, false},
		{ue, true},
		{fmt.Errorf("token: %w", ue), true},
	} {
		if got := ipc.IsUntrustedServer(tc.err); got != tc.want {
			t.Errorf("IsUntrustedServer(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
