package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
)

// Tests for issue 10, faults 2, 4 (server half), 5, 10 and 11: what a client that leaves,
// lies about its body, plays with key case or stops reading can do to the socket API.

// faultStore is a MemoryStore that can hold chosen calls until the test releases them
// (honouring ctx meanwhile, as the keyring does) and fail deletes.
type faultStore struct {
	*agent.MemoryStore
	mu         sync.Mutex
	held       map[string]bool // "set hub/secret", "delete hub/secret", "get hub/secret"
	entered    chan string     // gets the held call that starts waiting
	release    chan struct{}   // closed to let held calls go on
	failDelete atomic.Bool
}

func newFaultStore() *faultStore {
	return &faultStore{MemoryStore: agent.NewMemoryStore(), held: map[string]bool{},
		entered: make(chan string, 16), release: make(chan struct{})}
}

func (s *faultStore) hold(call string) {
	s.mu.Lock()
	s.held[call] = true
	s.mu.Unlock()
}

func (s *faultStore) wait(ctx context.Context, call string) error {
	s.mu.Lock()
	held := s.held[call]
	s.mu.Unlock()
	if !held {
		return nil
	}
	s.entered <- call
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", call, ctx.Err())
	}
}

func (s *faultStore) Get(ctx context.Context, account string) (string, error) {
	if err := s.wait(ctx, "get "+account); err != nil {
		return "", err
	}
	return s.MemoryStore.Get(ctx, account)
}

func (s *faultStore) Set(ctx context.Context, account, value string) error {
	if err := s.wait(ctx, "set "+account); err != nil {
		return err
	}
	return s.MemoryStore.Set(ctx, account, value)
}

func (s *faultStore) Delete(ctx context.Context, account string) error {
	if err := s.wait(ctx, "delete "+account); err != nil {
		return err
	}
	if s.failDelete.Load() {
		return fmt.Errorf("delete %s: the keyring is locked", account)
	}
	return s.MemoryStore.Delete(ctx, account)
}

// awaitHeld waits until a held call has begun; the bound only catches a hang.
func (s *faultStore) awaitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-s.entered:
	case <-time.After(15 * time.Second):
		t.Fatal("no held store call began within 15s")
	}
}

// stored is the secret under account, or "" when there is none.
func (s *faultStore) stored(t *testing.T, account string) string {
	t.Helper()
	v, err := s.MemoryStore.Get(context.Background(), account)
	if errors.Is(err, providers.ErrSecretNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// gatedProvider hands out a token once per value sent on release.
type gatedProvider struct {
	release chan struct{}
	calls   atomic.Int32
}

func (p *gatedProvider) Fetch(ctx context.Context) (*providers.Credential, error) {
	p.calls.Add(1)
	select {
	case <-p.release:
		return providers.TokenCredential("Bearer", "gated-token", time.Now().Add(time.Hour)), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// logBuffer collects the server's and the agent's log.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type hardEnv struct {
	a      *agent.Agent
	client *ipc.Client
	sock   string
	store  *faultStore
	log    *logBuffer
	gated  *gatedProvider
	// shutdown cancels Serve's context and returns Serve's result; it may be called once.
	shutdown func() error
}

type hardOpts struct {
	cfgPath      string        // default: config.toml in a new directory
	writeTimeout time.Duration // Server.WriteTimeout
}

// startHard runs an agent with profiles "hub" (apikey headers, secret canary), "sig"
// (apikey sigv4, secret canary) and "gated" (a gatedProvider) behind a real socket.
func startHard(t *testing.T, o hardOpts) *hardEnv {
	t.Helper()
	dir := t.TempDir()
	if o.cfgPath == "" {
		o.cfgPath = filepath.Join(dir, "config.toml")
	}
	store := newFaultStore()
	for _, acct := range []string{"hub/secret", "sig/secret"} {
		if err := store.Set(context.Background(), acct, canary); err != nil {
			t.Fatal(err)
		}
	}
	gated := &gatedProvider{release: make(chan struct{})}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := &agent.Config{Path: o.cfgPath, Profiles: map[string]*providers.ProfileConfig{
		"hub": {Provider: "apikey", KeyID: "a1b2", Hosts: []string{"api.example.com"},
			Headers: map[string]string{"X-API-Key": "{secret}"}},
		"sig":   {Provider: "apikey", Mode: "sigv4", KeyID: "AKID", Region: "us-east-1", Service: "api", Hosts: []string{"api.example.com"}},
		"gated": {Provider: "gated"},
	}}
	a, err := agent.New(agent.Options{Config: cfg, Store: store, Logger: log,
		Providers: map[string]providers.Factory{
			apikey.Name: apikey.New,
			"gated":     func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) { return gated, nil },
		}})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "agent.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Server{Agent: a, Log: log, WriteTimeout: o.writeTimeout}).Serve(ctx, ln) }()
	var once sync.Once
	var serveErr error
	shutdown := func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(30 * time.Second):
				serveErr = errors.New("Serve did not return within 30s of its context ending")
			}
		})
		return serveErr
	}
	t.Cleanup(func() {
		if err := shutdown(); err != nil {
			t.Errorf("Serve: %v", err)
		}
		select {
		case <-store.release:
		default:
			close(store.release)
		}
		close(gated.release)
		a.Close()
		if t.Failed() {
			t.Logf("log:\n%s", logs)
		}
	})
	return &hardEnv{a: a, client: &ipc.Client{Socket: sock}, sock: sock, store: store, log: logs, gated: gated, shutdown: shutdown}
}

// dial opens a connection of the test's own to the agent.
func (e *hardEnv) dial(t *testing.T) *net.UnixConn {
	t.Helper()
	c, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UnixConn)
}

// answer reads one answer from c and returns its status and, for an error, the error.
func answer(t *testing.T, c net.Conn) (int, *ipc.Error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 {
		return resp.StatusCode, nil
	}
	var eb errorBody
	if err := json.Unmarshal(b, &eb); err != nil || eb.Error == nil {
		t.Fatalf("answer %d is not in the error shape: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, eb.Error
}

// waitUntil polls cond; the bound only catches a hang.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// graceForCancel lets the server notice a closed connection: long enough for the old
// behaviour (a cancelled request context) to show, and irrelevant to the fixed one.
const graceForCancel = 300 * time.Millisecond

func secretOf(s string) *string { return &s }

// Fault 2: a DELETE whose client hangs up at once still deletes the secret, and a later
// PUT of the same name without a secret does not bring the old secret back.
func TestDeleteFinishesWhenClientLeaves(t *testing.T) {
	e := startHard(t, hardOpts{})
	ctx := context.Background()
	const orphSecret = "orph-secret-4b1d"
	if err := e.client.PutProfile(ctx, "orph", ipc.ProfileSpec{ProfileConfig: ipc.ProfileConfig{
		Provider: "apikey", Headers: map[string]string{"X-API-Key": "{secret}"}}, Secret: secretOf(orphSecret)}); err != nil {
		t.Fatal(err)
	}
	e.store.hold("delete orph/secret")
	c := e.dial(t)
	io.WriteString(c, "DELETE /v1/profiles/orph HTTP/1.1\r\nHost: authagent\r\n\r\n")
	e.store.awaitHeld(t)
	c.Close()
	time.Sleep(graceForCancel)
	close(e.store.release)

	waitUntil(t, "the secret of orph deleted", func() bool { return e.store.stored(t, "orph/secret") == "" })
	waitUntil(t, "profile orph removed", func() bool {
		_, err := e.client.Profile(ctx, "orph")
		return isCode(err, ipc.CodeUnknownProfile)
	})
	if strings.Contains(e.log.String(), "level=ERROR") {
		t.Errorf("the agent logged an error for a client that left:\n%s", e.log)
	}

	if err := e.client.PutProfile(ctx, "orph", ipc.ProfileSpec{ProfileConfig: ipc.ProfileConfig{
		Provider: "apikey", Headers: map[string]string{"X-API-Key": "{secret}"}}}); err != nil {
		t.Fatal(err)
	}
	c2, err := e.client.Credential(ctx, "orph")
	if err == nil && strings.Contains(c2.Headers["X-API-Key"], orphSecret) {
		t.Fatalf("a new profile orph without a secret serves the deleted one")
	}
	if !isCode(err, ipc.CodeNeedsLogin) {
		t.Errorf("credential of orph redefined without a secret: %v, want %s", err, ipc.CodeNeedsLogin)
	}
}

// isCode reports whether err is an API error with code.
func isCode(err error, code string) bool {
	var ae *ipc.Error
	return errors.As(err, &ae) && ae.Code == code
}

// Fault 2: a PUT whose client hangs up while the secret is written is applied whole.
func TestPutFinishesWhenClientLeaves(t *testing.T) {
	e := startHard(t, hardOpts{})
	e.store.hold("set late/secret")
	c := e.dial(t)
	body := `{"provider":"apikey","headers":{"X-API-Key":"{secret}"},"secret":"late-secret"}`
	fmt.Fprintf(c, "PUT /v1/profiles/late HTTP/1.1\r\nHost: authagent\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	e.store.awaitHeld(t)
	c.Close()
	time.Sleep(graceForCancel)
	close(e.store.release)

	waitUntil(t, "profile late defined", func() bool {
		_, err := e.client.Profile(context.Background(), "late")
		return err == nil
	})
	cred, err := e.client.Credential(context.Background(), "late")
	if err != nil || cred.Headers["X-API-Key"] != "late-secret" {
		t.Fatalf("credential of late = %v, %v; want the secret it was defined with", cred, err)
	}
}

// Fault 2: a PUT whose config write fails leaves the secret store as it was.
func TestPutRollsBackSecretWhenConfigWriteFails(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A path below a regular file cannot be written, whoever we run as.
	e := startHard(t, hardOpts{cfgPath: filepath.Join(notDir, "config.toml")})
	ctx := context.Background()
	for _, tc := range []struct {
		name, account, want string
	}{
		{"hub", "hub/secret", canary}, // replaced: the old secret comes back
		{"fresh", "fresh/secret", ""}, // new: no secret stays
	} {
		err := e.client.PutProfile(ctx, tc.name, ipc.ProfileSpec{ProfileConfig: ipc.ProfileConfig{
			Provider: "apikey", Headers: map[string]string{"X-API-Key": "{secret}"}}, Secret: secretOf("new-secret")})
		var ae *ipc.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
			t.Errorf("PUT %s with an unwritable config: %v, want 503", tc.name, err)
		}
		if got := e.store.stored(t, tc.account); got != tc.want {
			t.Errorf("after the failed PUT %s the store holds %q under %s, want %q", tc.name, got, tc.account, tc.want)
		}
	}
	if cred, err := e.client.Credential(ctx, "hub"); err != nil || cred.Headers["X-API-Key"] != canary {
		t.Errorf("hub after the failed PUT: %v, %v; want its old secret", cred, err)
	}
}

// Fault 2: when the store refuses to delete a secret, the profile is kept, so that no
// secret outlives its profile; a retry finishes the job.
func TestDeleteKeepsProfileWhenStoreFails(t *testing.T) {
	e := startHard(t, hardOpts{})
	ctx := context.Background()
	e.store.failDelete.Store(true)
	err := e.client.DeleteProfile(ctx, "hub")
	var ae *ipc.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("DELETE with a failing store: %v, want 503", err)
	}
	if cred, err := e.client.Credential(ctx, "hub"); err != nil || cred.Headers["X-API-Key"] != canary {
		t.Errorf("hub after the failed DELETE: %v, %v; want it still served", cred, err)
	}
	e.store.failDelete.Store(false)
	if err := e.client.DeleteProfile(ctx, "hub"); err != nil {
		t.Fatal(err)
	}
	if got := e.store.stored(t, "hub/secret"); got != "" {
		t.Errorf("after DELETE the secret of hub is still stored")
	}
	if _, err := e.client.Profile(ctx, "hub"); !isCode(err, ipc.CodeUnknownProfile) {
		t.Errorf("after DELETE: %v, want %s", err, ipc.CodeUnknownProfile)
	}
}

// Fault 2: reads whose client left are not server errors, and a refresh such a read
// started still completes for the next caller.
func TestReadsWhenClientLeaves(t *testing.T) {
	e := startHard(t, hardOpts{})
	ctx := context.Background()
	e.gated.release <- struct{}{} // the fetch at start
	if _, err := e.client.Credential(ctx, "gated"); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Reject(ctx, "gated"); err != nil {
		t.Fatal(err)
	}

	t.Run("credential", func(t *testing.T) {
		c := e.dial(t)
		io.WriteString(c, "GET /v1/profiles/gated/credential HTTP/1.1\r\nHost: authagent\r\n\r\n")
		waitUntil(t, "the request starts a refresh", func() bool { return e.gated.calls.Load() == 2 })
		c.Close()
		waitUntil(t, "a log line for the client that left", func() bool {
			return strings.Contains(e.log.String(), `msg="client closed request" status=499 method=GET path=/v1/profiles/gated/credential`)
		})
		e.gated.release <- struct{}{}
		cred, err := e.client.Credential(ctx, "gated")
		if err != nil || cred.Token != "gated-token" {
			t.Fatalf("credential after the client left: %v, %v", cred, err)
		}
		if n := e.gated.calls.Load(); n != 2 {
			t.Errorf("the provider was called %d times, want 2: the refresh the first request started should serve the next", n)
		}
	})

	t.Run("sign", func(t *testing.T) {
		waitUntil(t, "profile sig ready", func() bool {
			p, err := e.client.Profile(ctx, "sig")
			return err == nil && p.State == ipc.StateValid
		})
		e.store.hold("get sig/secret")
		c := e.dial(t)
		body := `{"method":"GET","url":"https://api.example.com/x"}`
		fmt.Fprintf(c, "POST /v1/profiles/sig/sign HTTP/1.1\r\nHost: authagent\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		e.store.awaitHeld(t)
		c.Close()
		waitUntil(t, "a log line for the client that left", func() bool {
			return strings.Contains(e.log.String(), `msg="client closed request" status=499 method=POST path=/v1/profiles/sig/sign`)
		})
	})
	if strings.Contains(e.log.String(), "level=ERROR") {
		t.Errorf("the agent logged an error for clients that left:\n%s", e.log)
	}
}

// Fault 5: a body shorter than its Content-Length, or chunked without its last chunk,
// is refused with 400 whether the client then stalls or half-closes, and nothing changes.
func TestBrokenBodyFraming(t *testing.T) {
	e := startHard(t, hardOpts{})
	body := `{"provider":"apikey","headers":{"X-K":"{secret}"}}`
	for _, tc := range []struct {
		name, head, body string
		halfClose        bool
	}{
		{"content-length lies, half-close", "Content-Length: 500", body, true},
		{"content-length lies, stall", "Content-Length: 500", body, false},
		{"chunked without last chunk, half-close", "Transfer-Encoding: chunked", fmt.Sprintf("%x\r\n%s\r\n", len(body), body), true},
		{"chunked without last chunk, stall", "Transfer-Encoding: chunked", fmt.Sprintf("%x\r\n%s\r\n", len(body), body), false},
		{"chunk cut short, half-close", "Transfer-Encoding: chunked", fmt.Sprintf("%x\r\n%s", len(body)+10, body), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := strings.NewReplacer(" ", "", ",", "-").Replace(tc.name)
			c := e.dial(t)
			fmt.Fprintf(c, "PUT /v1/profiles/%s HTTP/1.1\r\nHost: authagent\r\nContent-Type: application/json\r\n%s\r\n\r\n%s", name, tc.head, tc.body)
			if tc.halfClose {
				c.CloseWrite()
			}
			status, ae := answer(t, c)
			if status != http.StatusBadRequest || ae.Code != ipc.CodeBadRequest {
				t.Errorf("got %d %+v, want 400 %s", status, ae, ipc.CodeBadRequest)
			}
			if _, err := e.client.Profile(context.Background(), name); !isCode(err, ipc.CodeUnknownProfile) {
				t.Errorf("profile %s after a broken body: %v, want it not defined", name, err)
			}
			if ae != nil {
				t.Logf("%s: %s", tc.name, ae.Message)
			}
		})
	}
}

// Fault 10: keys match exactly; a key in another case, an unknown key and a key given
// twice are refused with 400 naming the key, and nothing changes.
func TestStrictBodyKeys(t *testing.T) {
	e := startHard(t, hardOpts{})
	ctx := context.Background()
	// The body is checked before the profile is looked up: "jwt" need not exist.
	for _, tc := range []struct {
		name, method, path, body, wantKey string
	}{
		{"Provider overrides provider", "PUT", "/v1/profiles/x", `{"provider":"apikey","Provider":"gated"}`, `"Provider"`},
		{"Secret overrides secret", "PUT", "/v1/profiles/hub", `{"provider":"apikey","headers":{"X-API-Key":"{secret}"},"secret":"a","Secret":"b"}`, `"Secret"`},
		{"capitalised key alone", "PUT", "/v1/profiles/x", `{"Provider":"apikey"}`, `"Provider"`},
		{"key twice", "PUT", "/v1/profiles/hub", `{"provider":"apikey","secret":"a","secret":"b"}`, `"secret"`},
		{"key twice, escaped", "PUT", "/v1/profiles/hub", `{"provider":"apikey","secret":"a","s\u0065cret":"b"}`, `"secret"`},
		{"nested key twice", "PUT", "/v1/profiles/x", `{"provider":"apikey","headers":{"X-K":"{secret}","X-K":"b"}}`, `"headers.X-K"`},
		{"unknown key", "PUT", "/v1/profiles/x", `{"provider":"apikey","colour":"red"}`, `"colour"`},
		{"not an object", "PUT", "/v1/profiles/x", `["provider","apikey"]`, "object"},
		{"token case", "PUT", "/v1/profiles/jwt/token", `{"token":"a.b.c","Token":"d.e.f"}`, `"Token"`},
		{"token twice", "PUT", "/v1/profiles/jwt/token", `{"token":"a.b.c","token":"d.e.f"}`, `"token"`},
		{"sign case", "POST", "/v1/profiles/sig/sign", `{"method":"GET","URL":"https://evil.example.org/"}`, `"URL"`},
		{"sign twice", "POST", "/v1/profiles/sig/sign", `{"url":"https://api.example.com/","url":"https://evil.example.org/"}`, `"url"`},
		{"wrong type", "PUT", "/v1/profiles/x", `{"provider":"apikey","hosts":"api.example.com"}`, `"hosts"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://authagent"+tc.path, strings.NewReader(tc.body))
			c := e.dial(t)
			req.Write(c)
			status, ae := answer(t, c)
			if status != http.StatusBadRequest || ae.Code != ipc.CodeBadRequest || !strings.Contains(ae.Message, tc.wantKey) {
				t.Errorf("got %d %+v, want 400 %s naming %s", status, ae, ipc.CodeBadRequest, tc.wantKey)
			}
		})
	}
	if got := e.store.stored(t, "hub/secret"); got != canary {
		t.Errorf("after the refused PUTs the secret of hub is %q, want it unchanged", got)
	}
	if _, err := e.client.Profile(ctx, "x"); !isCode(err, ipc.CodeUnknownProfile) {
		t.Errorf("profile x after refused PUTs: %v, want it not defined", err)
	}
	// Exact keys still work.
	if err := e.client.PutProfile(ctx, "x", ipc.ProfileSpec{ProfileConfig: ipc.ProfileConfig{
		Provider: "apikey", Headers: map[string]string{"X-K": "{secret}"}}, Secret: secretOf("x-secret")}); err != nil {
		t.Fatal(err)
	}
}

// dropped waits until the agent has closed c, which the test never reads: a write to a
// Unix socket whose other end is closed fails with EPIPE (or ECONNRESET).
func dropped(t *testing.T, c net.Conn, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := c.Write([]byte("X"))
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Fault 11: a client that stops reading its answers is dropped.
func TestClientThatStopsReadingIsDropped(t *testing.T) {
	e := startHard(t, hardOpts{writeTimeout: 300 * time.Millisecond})
	c := e.dial(t)
	// Pipelined requests whose answers are never read fill the socket's buffers.
	go func() {
		req := []byte("GET /v1/profiles HTTP/1.1\r\nHost: authagent\r\n\r\n")
		for range 20000 {
			c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Write(req); err != nil {
				return
			}
		}
	}()
	if !dropped(t, c, 15*time.Second) {
		t.Fatal("the agent kept the connection of a client that reads nothing for 15s")
	}
	// The agent keeps serving others.
	if _, err := e.client.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Fault 11: a watcher that stops reading while events pour in is dropped; one that reads
// is not, however quiet the stream.
func TestStalledWatcherIsDropped(t *testing.T) {
	e := startHard(t, hardOpts{writeTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	hosts := make([]string, 200)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("host-%03d.a-rather-long-domain-name.example.com", i)
	}
	if err := e.client.PutProfile(ctx, "wide", ipc.ProfileSpec{ProfileConfig: ipc.ProfileConfig{
		Provider: "apikey", Hosts: hosts, Headers: map[string]string{"X-K": "{secret}"}}, Secret: secretOf("wide-secret")}); err != nil {
		t.Fatal(err)
	}

	healthy, err := e.client.Watch(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.Close()
	stalled := e.dial(t)
	io.WriteString(stalled, "GET /v1/events HTTP/1.1\r\nHost: authagent\r\n\r\n")
	// Only the answer's head is read: the stream is up, and nothing of it is read again.
	stalled.SetReadDeadline(time.Now().Add(15 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReaderSize(stalled, 16), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/events: %v, %v", resp, err)
	}
	time.Sleep(3 * 300 * time.Millisecond) // quiet for longer than the write timeout

	// Each reject publishes the wide profile, about 10 KiB: 3 MB pour into the stalled
	// watcher's socket. The healthy one takes each event before the next reject, so it
	// keeps up by reading, not by how soon a loaded machine schedules its reader (one that
	// falls a socket buffer behind for a write timeout is rightly dropped).
	got := 0
	for i := range 300 {
		if err := e.client.Reject(ctx, "wide"); err != nil {
			t.Fatalf("reject: %v", err)
		}
		for got <= i {
			ev, err := healthy.Next()
			if err != nil {
				t.Fatalf("the healthy watcher lost its stream after %d events: %v", got, err)
			}
			if ev.Profile.Name == "wide" {
				got++
			}
		}
	}
	if !dropped(t, stalled, 15*time.Second) {
		t.Fatal("the agent kept a watcher that reads nothing for 15s")
	}
}

// Fault 4 (server half): shutdown ends open event streams at once instead of waiting out
// its timeout for them.
func TestShutdownEndsEventStreams(t *testing.T) {
	e := startHard(t, hardOpts{})
	var ws []*ipc.Watcher
	for range 3 {
		w, err := e.client.Watch(context.Background(), true)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if _, err := w.Next(); err != nil { // the stream is up
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	start := time.Now()
	if err := e.shutdown(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("Serve returned %s after its context ended, with %d watchers open", took.Round(time.Millisecond), len(ws))
	// The streams are over once Serve has returned, not only when the agent closes.
	for i, w := range ws {
		ended := make(chan error, 1)
		go func() {
			for {
				if _, err := w.Next(); err != nil {
					ended <- err
					return
				}
			}
		}()
		select {
		case <-ended:
		case <-time.After(30 * time.Second):
			t.Errorf("watcher %d still open 30s after Serve returned", i)
		}
	}
	if strings.Contains(e.log.String(), "still in progress at shutdown") {
		t.Errorf("shutdown waited out its timeout:\n%s", e.log)
	}
}

// A body that is not valid UTF-8 is refused (encoding/json would silently put U+FFFD in
// a secret), and a value that does not decode is blamed on its key.
func TestBodyUTF8AndKeyErrors(t *testing.T) {
	e := startServer(t, nil)
	for _, tc := range []struct {
		body, want string
	}{
		{"{\"provider\":\"apikey\",\"key_id\":\"\xff\xfe\",\"secret\":\"s\"}", "UTF-8"},
		{`{"provider":"apikey","timeout":99999999999999999999}`, `at key \"timeout\"`},
		{`{"provider":"apikey","refresh_before":"soon"}`, `at key \"refresh_before\"`},
	} {
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", e.sock)
		}}}
		req, _ := http.NewRequest(http.MethodPut, "http://authagent/v1/profiles/u8", strings.NewReader(tc.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.want) {
			t.Errorf("%q: %d %s; want 400 naming %s", tc.body, resp.StatusCode, b, tc.want)
		}
	}
	if _, err := e.client.Profile(context.Background(), "u8"); err == nil {
		t.Error("a refused body defined the profile")
	}
}
