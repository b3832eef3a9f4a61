package tray

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authagent/authagent/ipc"
)

// fakeAgent answers the part of the socket API the tray uses, on a Unix socket, and can
// be stopped and started again like a real agent.
type fakeAgent struct {
	t    *testing.T
	sock string

	mu       sync.Mutex
	profiles map[string]ipc.Profile
	subs     map[chan ipc.Event]bool
	calls    []string // "login work", "logout work", …
	loginErr *ipc.Error
	browser  bool               // logins are browser logins
	loginReq []ipc.LoginRequest // the bodies of login requests
	status   *ipc.Status        // GET /v1/status answers 404 while nil
	audit    []ipc.AuditEntry   // GET /v1/audit answers 503 while nil
	srv      *http.Server
	stopped  chan struct{} // closed by stop: ends every event stream
}

func newFakeAgent(t *testing.T, ps ...ipc.Profile) *fakeAgent {
	t.Helper()
	dir, err := os.MkdirTemp("", "tray-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &fakeAgent{t: t, sock: filepath.Join(dir, "agent.sock"), profiles: map[string]ipc.Profile{}, subs: map[chan ipc.Event]bool{}}
	for _, p := range ps {
		a.profiles[p.Name] = p
	}
	t.Cleanup(a.stop)
	return a
}

func (a *fakeAgent) client() *ipc.Client { return &ipc.Client{Socket: a.sock} }

func (a *fakeAgent) start() {
	a.t.Helper()
	os.Remove(a.sock)
	ln, err := net.Listen("unix", a.sock)
	if err != nil {
		a.t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", a.events)
	mux.HandleFunc("GET /v1/profiles/{name}", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		p, ok := a.profiles[r.PathValue("name")]
		a.mu.Unlock()
		if !ok {
			writeErr(w, &ipc.Error{Status: 404, Code: ipc.CodeUnknownProfile, Message: "no such profile"})
			return
		}
		json.NewEncoder(w).Encode(p)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		st := a.status
		a.mu.Unlock()
		if st == nil {
			writeErr(w, &ipc.Error{Status: 404, Code: ipc.CodeNotFound, Message: "no status in this test"})
			return
		}
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("GET /v1/audit", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		entries := a.audit
		a.mu.Unlock()
		if entries == nil {
			writeErr(w, &ipc.Error{Status: 503, Code: ipc.CodeUnavailable, Message: "no audit log in this test"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"entries": entries})
	})
	mux.HandleFunc("POST /v1/profiles/{name}/login", a.login)
	mux.HandleFunc("POST /v1/profiles/{name}/logout", func(w http.ResponseWriter, r *http.Request) {
		a.record("logout " + r.PathValue("name"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /v1/profiles/{name}/login", func(w http.ResponseWriter, r *http.Request) {
		a.record("cancel-login " + r.PathValue("name"))
		w.WriteHeader(http.StatusNoContent)
	})
	a.mu.Lock()
	a.srv = &http.Server{Handler: mux}
	a.stopped = make(chan struct{})
	a.mu.Unlock()
	go a.srv.Serve(ln)
}

// stop ends the agent as a crash would: its streams break and nothing answers.
func (a *fakeAgent) stop() {
	a.mu.Lock()
	srv, stopped := a.srv, a.stopped
	a.srv = nil
	a.mu.Unlock()
	if srv == nil {
		return
	}
	close(stopped)
	srv.Close()
	os.Remove(a.sock)
}

func (a *fakeAgent) events(w http.ResponseWriter, r *http.Request) {
	ch := make(chan ipc.Event, 100)
	a.mu.Lock()
	stopped := a.stopped
	a.subs[ch] = true
	var initial []ipc.Profile
	if r.URL.Query().Get("initial") == "true" {
		for _, p := range a.profiles {
			initial = append(initial, p)
		}
	}
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.subs, ch)
		a.mu.Unlock()
	}()
	enc := json.NewEncoder(w)
	for _, p := range initial {
		enc.Encode(ipc.Event{Type: "current", Profile: p, Time: time.Now()})
	}
	w.(http.Flusher).Flush()
	for {
		select {
		case ev := <-ch:
			enc.Encode(ev)
			w.(http.Flusher).Flush()
		case <-stopped:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (a *fakeAgent) login(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	a.record("login " + name)
	a.mu.Lock()
	err := a.loginErr
	a.mu.Unlock()
	if err != nil {
		writeErr(w, err)
		return
	}
	var lr ipc.LoginRequest
	json.NewDecoder(r.Body).Decode(&lr)
	ch := &ipc.LoginChallenge{UserCode: "WDJB-MJHT", VerificationURI: "https://idp.example/device",
		VerificationURIComplete: "https://idp.example/device?user_code=WDJB-MJHT", ExpiresAt: time.Now().Add(10 * time.Minute), Interval: 5, Flow: ipc.FlowDevice}
	a.mu.Lock()
	a.loginReq = append(a.loginReq, lr)
	if a.browser {
		auth := "https://idp.example/authorize?client_id=cli&state=s1"
		ch = &ipc.LoginChallenge{VerificationURI: auth, AuthURL: auth, ExpiresAt: time.Now().Add(5 * time.Minute), Flow: ipc.FlowBrowser}
	}
	p := a.profiles[name]
	a.mu.Unlock()
	p.State, p.Login = ipc.StateLoginPending, ch
	a.set(p)
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(ch)
}

func writeErr(w http.ResponseWriter, e *ipc.Error) {
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(map[string]any{"error": e})
}

// setStatus changes what GET /v1/status answers; it sends no event, as a failed reload does not.
func (a *fakeAgent) setStatus(st ipc.Status) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status = &st
}

func (a *fakeAgent) record(call string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, call)
}

func (a *fakeAgent) recorded() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls)
}

// set changes a profile and tells the subscribers.
func (a *fakeAgent) set(p ipc.Profile) {
	a.mu.Lock()
	defer a.mu.Unlock()
	typ := "changed"
	if _, ok := a.profiles[p.Name]; !ok {
		typ = "added"
	}
	a.profiles[p.Name] = p
	a.broadcast(ipc.Event{Type: typ, Profile: p, Time: time.Now()})
}

func (a *fakeAgent) remove(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.profiles[name]
	delete(a.profiles, name)
	a.broadcast(ipc.Event{Type: "removed", Profile: p, Time: time.Now()})
}

func (a *fakeAgent) broadcast(ev ipc.Event) {
	for ch := range a.subs {
		select {
		case ch <- ev:
		default:
			a.t.Errorf("a subscriber is 100 events behind")
		}
	}
}
