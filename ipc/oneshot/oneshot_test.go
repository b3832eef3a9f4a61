package oneshot_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/credhelper"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/ipc/oneshot"
	"github.com/authagent/authagent/ipc/server/servertest"
	"github.com/authagent/authagent/ipc/wire"
	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
)

// Both clients are the helpers' Agent.
var (
	_ credhelper.Agent = (*oneshot.Client)(nil)
	_ credhelper.Agent = (*ipc.Client)(nil)
)

const canary = "canary-71c3"

// startAgent runs an agent with n apikey profiles p0…, p0 sending to api.example.com,
// behind a real socket.
func startAgent(t *testing.T, n int) string {
	t.Helper()
	store := agent.NewMemoryStore()
	cfg := &agent.Config{Path: filepath.Join(t.TempDir(), "config.toml"), Profiles: map[string]*providers.ProfileConfig{}}
	for i := range n {
		name := fmt.Sprintf("p%d", i)
		cfg.Profiles[name] = &providers.ProfileConfig{Provider: "apikey", Hosts: []string{name + ".example.com"}}
		if err := store.Set(context.Background(), name+"/secret", canary); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Profiles["p0"].Hosts = []string{"api.example.com"}
	a, err := agent.New(agent.Options{Config: cfg, Store: store, Providers: map[string]providers.Factory{apikey.Name: apikey.New}})
	if err != nil {
		t.Fatal(err)
	}
	return servertest.Serve(t, a, "")
}

// The one-shot client gets what ipc.Client gets, for every call the helpers make: small
// answers (Content-Length), large ones (chunked), errors and empty answers.
func TestSameAsClient(t *testing.T) {
	sock := startAgent(t, 60) // the profile list is far beyond one write buffer: chunked
	one, full := &oneshot.Client{Socket: sock}, &ipc.Client{Socket: sock}
	ctx := context.Background()
	type answer struct {
		V   any
		Err string
	}
	errText := func(err error) string {
		if err == nil {
			return ""
		}
		return fmt.Sprintf("%T %v code=%v", err, err, wire.IsCode(err, wire.CodeUnknownProfile))
	}
	for name, call := range map[string]func(credhelper.Agent) answer{
		"Credential": func(a credhelper.Agent) answer {
			c, err := a.Credential(ctx, "p0", wire.MinValid(30), wire.ForURL("https://api.example.com/x"))
			return answer{c, errText(err)}
		},
		"CredentialForURL": func(a credhelper.Agent) answer {
			c, err := a.CredentialForURL(ctx, "https://api.example.com/x")
			return answer{c, errText(err)}
		},
		"CredentialForURL no profile": func(a credhelper.Agent) answer {
			c, err := a.CredentialForURL(ctx, "https://nowhere.example.org/")
			return answer{c, errText(err)}
		},
		"Profile":         func(a credhelper.Agent) answer { p, err := a.Profile(ctx, "p1"); return answer{p, errText(err)} },
		"Profile unknown": func(a credhelper.Agent) answer { p, err := a.Profile(ctx, "nope"); return answer{p, errText(err)} },
		"Profiles":        func(a credhelper.Agent) answer { ps, err := a.Profiles(ctx); return answer{ps, errText(err)} },
		"Reject":          func(a credhelper.Agent) answer { return answer{nil, errText(a.Reject(ctx, "p2"))} },
		"Reject unknown":  func(a credhelper.Agent) answer { return answer{nil, errText(a.Reject(ctx, "nope"))} },
	} {
		// A profile being (re)loaded shows as refreshing for a moment; compare answers of
		// an agent at rest, or the two calls see different moments.
		settled(t, full)
		got, want := call(one), call(full)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: oneshot (+) against ipc.Client (-):\n%s", name, diff)
		}
	}
	if ps, _ := one.Profiles(ctx); len(ps) != 60 {
		t.Errorf("Profiles: %d, want 60", len(ps))
	}
}

// settled waits until no profile of the agent behind c has a fetch in flight.
func settled(t *testing.T, c *ipc.Client) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ps, err := c.Profiles(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		busy := false
		for _, p := range ps {
			busy = busy || p.State == "refreshing"
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("profiles still refreshing after 30s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNoAgent(t *testing.T) {
	c := &oneshot.Client{Socket: filepath.Join(t.TempDir(), "none.sock")}
	_, err := c.Profiles(context.Background())
	if !errors.Is(err, wire.ErrNoAgent) || !strings.Contains(err.Error(), "authagent start") {
		t.Errorf("got %v, want ErrNoAgent that says how to start one", err)
	}
}

// Another user's server is refused before anything is written to it.
func TestRefusesAnotherUsersServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		n, _ := c.Read(make([]byte, 1))
		got <- n
	}()
	c := &oneshot.Client{Socket: sock}
	oneshot.SetServerCheck(c, wire.ServerCheck{UID: func() int { return 12345 }})
	_, err = c.Credential(context.Background(), "p0")
	if !wire.IsUntrustedServer(err) || !strings.Contains(err.Error(), "nothing was sent") {
		t.Errorf("got %v, want refused", err)
	}
	if n := <-got; n != 0 {
		t.Errorf("the stranger read %d bytes", n)
	}
}

// Answers in each framing net/http uses (Content-Length set by the handler or by the
// server, chunked with trailers) are read whole; a body cut short is an error.
func TestFraming(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mode := ""
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := `{"profiles":[{"name":"a","hosts":["x"]}]}`
		switch mode {
		case "length":
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		case "chunked-trailer":
			w.Header().Set("Trailer", "X-T")
			w.Write([]byte(body[:5]))
			w.(http.Flusher).Flush()
			w.Write([]byte(body[5:]))
			w.Header().Set("X-T", "1")
			return
		case "cut":
			w.Header().Set("Content-Length", "100")
			w.Write([]byte(body))
			return
		}
		w.Write([]byte(body))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	c := &oneshot.Client{Socket: sock}
	for _, m := range []string{"length", "chunked-trailer", ""} {
		mode = m
		ps, err := c.Profiles(context.Background())
		if err != nil || len(ps) != 1 || ps[0].Name != "a" {
			t.Errorf("%q: %v, %v", m, ps, err)
		}
	}
	mode = "cut"
	if _, err := c.Profiles(context.Background()); err == nil {
		t.Error("a body cut short was taken")
	}
}

// The client keeps its connection for the next call. When the agent closes it after
// reading a request, a GET is sent again on a new connection, and never a request that
// may have changed something.
func TestKeepsConnectionResendsOnlyGET(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var seen []string
	conns := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns++
			mu.Unlock()
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 1; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					mu.Lock()
					seen = append(seen, req.Method+" "+req.URL.Path)
					mu.Unlock()
					if n == 3 {
						return // read, then gone
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"profiles\":[]}")
				}
			}()
		}
	}()
	c := &oneshot.Client{Socket: sock}
	defer c.Close()
	ctx := context.Background()
	for range 3 { // connection 1: two answers, then the third request is dropped and sent again on 2
		if _, err := c.Profiles(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Reject(ctx, "p"); err != nil { // the second request on connection 2
		t.Fatal(err)
	}
	if err := c.Reject(ctx, "p"); err == nil { // the third, dropped: not sent again
		t.Error("POST on a connection the agent closed after reading it: no error")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"GET /v1/profiles", "GET /v1/profiles", "GET /v1/profiles", "GET /v1/profiles",
		"POST /v1/profiles/p/reject", "POST /v1/profiles/p/reject"}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("requests the agent read (-want +got):\n%s", diff)
	}
	if conns != 2 {
		t.Errorf("%d connections, want 2", conns)
	}
}
