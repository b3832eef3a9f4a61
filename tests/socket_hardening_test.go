package tests

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 10, faults 2, 4 (server half), 5, 10 and 11, through the real binary and the real
// keyring: a client that hangs up, lies about its body, plays with key case or stops
// reading changes nothing it did not ask for and holds nothing forever.

// rawAnswer reads one answer from c.
func rawAnswer(t *testing.T, c net.Conn) (int, []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func dialAgent(t *testing.T, e *env) *net.UnixConn {
	t.Helper()
	c, err := net.Dial("unix", e.sock())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UnixConn)
}

// Fault 2: `DELETE` and hang up at once. The profile and its secret both go, and a new
// profile of the same name without a secret does not get the old one.
func TestDeleteWithClientGoneDeletesSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	secret := canary(t)
	addAPIKey(t, e, "orph", secret, "--header", "X-API-Key={secret}")

	c := dialAgent(t, e)
	io.WriteString(c, "DELETE /v1/profiles/orph HTTP/1.1\r\nHost: authagent\r\n\r\n")
	c.Close()

	waitFor(t, "profile orph removed", func() bool { return !slices.Contains(listProfiles(t, e).names(), "orph") })
	waitFor(t, "the secret of orph deleted from the keyring", func() bool {
		return e.sess.keyringLookup(t, "service", "authagent", "username", "orph/secret") == ""
	})

	status, body := apiDo(t, e, "PUT", "/v1/profiles/orph", strings.NewReader(`{"provider":"apikey","headers":{"X-API-Key":"{secret}"}}`))
	if status != http.StatusNoContent {
		t.Fatalf("PUT orph without a secret: %d %s", status, body)
	}
	status, body = apiDo(t, e, "GET", "/v1/profiles/orph/credential", nil)
	if strings.Contains(string(body), secret) {
		t.Fatalf("orph redefined without a secret serves the deleted secret")
	}
	wantAPIError(t, "credential of orph redefined without a secret", status, body, http.StatusUnauthorized, "needs_login")
	if slices.ContainsFunc(e.sess.keyringSearch(t, "service", "authagent"), func(it keyringItem) bool { return strings.Contains(it.secret, secret) }) {
		t.Errorf("the keyring still holds the secret of the deleted profile")
	}
	if strings.Contains(a.Log(), "level=ERROR") {
		t.Errorf("the agent logged an error for a client that hung up:\n%s", a.Log())
	}
	a.Stop()
}

// Fault 5: a body shorter than its Content-Length, or chunked without its last chunk, is
// refused with 400 and defines nothing, whether the client then half-closes or stalls.
func TestBrokenBodyFramingRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	body := `{"provider":"apikey","headers":{"X-K":"{secret}"}}`
	for _, tc := range []struct {
		name, head, body string
		halfClose        bool
	}{
		{"cl-half-close", "Content-Length: 500", body, true},
		{"cl-stall", "Content-Length: 500", body, false},
		{"chunked-half-close", "Transfer-Encoding: chunked", fmt.Sprintf("%x\r\n%s\r\n", len(body), body), true},
		{"chunked-stall", "Transfer-Encoding: chunked", fmt.Sprintf("%x\r\n%s\r\n", len(body), body), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialAgent(t, e)
			fmt.Fprintf(c, "PUT /v1/profiles/%s HTTP/1.1\r\nHost: authagent\r\nContent-Type: application/json\r\n%s\r\n\r\n%s", tc.name, tc.head, tc.body)
			if tc.halfClose {
				c.CloseWrite()
			}
			status, b := rawAnswer(t, c)
			wantAPIError(t, tc.name, status, b, http.StatusBadRequest, "bad_request")
			if slices.Contains(listProfiles(t, e).names(), tc.name) {
				t.Errorf("a broken body defined profile %s", tc.name)
			}
		})
	}
	t.Cleanup(a.Stop)
}

// Fault 10: "Provider" and "Secret" do not override "provider" and "secret"; keys in
// another case and keys given twice are refused, naming the key.
func TestBodyKeysAreExact(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	secret := canary(t)
	addAPIKey(t, e, "hub", secret, hubFlags()...)
	for _, tc := range []struct{ name, path, body, key string }{
		{"Secret", "/v1/profiles/hub", `{"provider":"apikey","key_id":"a1b2","headers":{"X-API-Key":"{secret}"},"secret":"s1","Secret":"s2"}`, `"Secret"`},
		{"Provider", "/v1/profiles/hub", `{"provider":"apikey","Provider":"externaljwt"}`, `"Provider"`},
		{"twice", "/v1/profiles/hub", `{"provider":"apikey","secret":"s1","secret":"s2"}`, `"secret"`},
		{"token", "/v1/profiles/hub/token", `{"token":"a.b.c","Token":"d.e.f"}`, `"Token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := apiDo(t, e, "PUT", tc.path, strings.NewReader(tc.body))
			ae := wantAPIError(t, tc.name, status, body, http.StatusBadRequest, "bad_request")
			if !strings.Contains(ae.Error.Message, tc.key) {
				t.Errorf("%s: message %q does not name %s", tc.name, ae.Error.Message, tc.key)
			}
		})
	}
	if got := runOK(t, e, "", "header", "hub").stdout; got != wantHubHeaderLines(secret) {
		t.Errorf("after the refused PUTs: authagent header hub = %q", got)
	}
	a.Stop()
}

// Fault 4, server half: SIGTERM with event watchers connected. The agent exits without
// waiting out its shutdown timeout for them; the 5 s here only catch a hang.
func TestSIGTERMWithWatchersOpen(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	addAPIKey(t, e, "hub", canary(t), hubFlags()...)
	var bodies []io.ReadCloser
	for range 3 {
		hc := apiClient(e.sock())
		hc.Timeout = 0
		resp, err := hc.Get("http://authagent/v1/events?initial=true")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil { // the stream is up
			t.Fatal(err)
		}
		bodies = append(bodies, resp.Body)
	}
	start := time.Now()
	if !a.proc.signal(syscall.SIGTERM, 5*time.Second) {
		t.Fatalf("the agent did not exit within 5s of SIGTERM with %d watchers open:\n%s", len(bodies), a.Log())
	}
	t.Logf("the agent exited %s after SIGTERM with %d watchers open", time.Since(start).Round(time.Millisecond), len(bodies))
	if a.proc.err != nil {
		t.Errorf("the agent did not exit cleanly: %v\n%s", a.proc.err, a.Log())
	}
	if strings.Contains(a.Log(), "still in progress at shutdown") {
		t.Errorf("shutdown waited out its timeout for the watchers:\n%s", a.Log())
	}
}

// Fault 11: a watcher that stops reading while events pour in is dropped (after the
// agent's 10 s write timeout); the bound here only catches a hang.
func TestStalledWatcherDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	hosts := make([]string, 200)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("%q", fmt.Sprintf("host-%03d.a-rather-long-domain-name.example.com", i))
	}
	status, body := apiDo(t, e, "PUT", "/v1/profiles/wide",
		strings.NewReader(`{"provider":"apikey","headers":{"X-K":"{secret}"},"secret":"w","hosts":[`+strings.Join(hosts, ",")+`]}`))
	if status != http.StatusNoContent {
		t.Fatalf("PUT wide: %d %s", status, body)
	}
	c := dialAgent(t, e)
	io.WriteString(c, "GET /v1/events HTTP/1.1\r\nHost: authagent\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	// Only the head is read; nothing of the stream ever is.
	if resp, err := http.ReadResponse(bufio.NewReaderSize(c, 16), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/events: %v, %v", resp, err)
	}
	for range 200 { // each publishes the wide profile, about 10 KiB
		if status, body := apiDo(t, e, "POST", "/v1/profiles/wide/reject", nil); status != http.StatusNoContent {
			t.Fatalf("reject: %d %s", status, body)
		}
	}
	// A write to a Unix socket whose other end is closed fails with EPIPE.
	deadline := time.Now().Add(40 * time.Second)
	for {
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := c.Write([]byte("X"))
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent kept a watcher that reads nothing for 40s:\n%s", a.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The agent keeps serving.
	if st := agentStatus(t, e); st.Profiles != 1 {
		t.Errorf("status after the stalled watcher: %+v", st)
	}
	a.Stop()
}
