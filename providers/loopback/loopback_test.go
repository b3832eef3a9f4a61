package loopback

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

const state = "st4te-Of-the-login"

func listen(t *testing.T, opts Options) *Listener {
	t.Helper()
	if opts.State == "" {
		opts.State = state
	}
	if opts.Name == "" {
		opts.Name = "profile work"
	}
	l, err := Listen(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// get sends one GET and returns the status and page; a client of its own, so no
// connection is shared between requests. It may run in a goroutine: a failure is an
// Errorf and status 0.
func get(t *testing.T, raw string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, raw, nil)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", raw, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// withCookie is the header of a browser that opened l's start page: its cookie.
func withCookie(l *Listener) map[string]string {
	return map[string]string{"Cookie": l.cookie + "=" + l.secret}
}

func redirectURL(l *Listener, q url.Values) string {
	return l.RedirectURI() + "?" + q.Encode()
}

func TestRedirectURIAndPorts(t *testing.T) {
	l := listen(t, Options{})
	if l.Port() == 0 {
		t.Fatal("no port")
	}
	if got, want := l.RedirectURI(), "http://127.0.0.1:"+strconv.Itoa(l.Port())+"/"; got != want {
		t.Errorf("RedirectURI = %q, want %q", got, want)
	}
	p := listen(t, Options{Path: "/oauth2/callback"})
	if !strings.HasSuffix(p.RedirectURI(), "/oauth2/callback") {
		t.Errorf("RedirectURI = %q, want the path", p.RedirectURI())
	}
	if _, err := Listen(Options{State: state, Path: "cb"}); err == nil {
		t.Error("a path without a leading / was taken")
	}
	if _, err := Listen(Options{}); err == nil {
		t.Error("a listener without a state was started")
	}
}

// A port in use is skipped for the next one of the list; when none is free, the error
// names the ports and says what to do.
func TestPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	free, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freePort := free.Addr().(*net.TCPAddr).Port
	free.Close()

	l := listen(t, Options{Ports: []int{busyPort, freePort}})
	if l.Port() != freePort {
		t.Errorf("listening on %d, want the free port %d after the busy %d", l.Port(), freePort, busyPort)
	}

	_, err = Listen(Options{Ports: []int{busyPort}, State: state})
	if err == nil {
		t.Fatalf("listening on a port in use (%d) worked", busyPort)
	}
	for _, want := range []string{strconv.Itoa(busyPort), "127.0.0.1", "no port for the login's redirect is free"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// Every request that is not the login's redirect gets 400 and a page that says why; the
// listener goes on waiting, and the real redirect still gets through.
func TestBadRequests(t *testing.T) {
	l := listen(t, Options{Path: "/cb"})
	good := url.Values{"code": {"the-code"}, "state": {state}}
	base := l.RedirectURI()
	for _, tc := range []struct {
		name   string
		method string
		url    string
		header map[string]string
		want   string
	}{
		{"wrong state", "GET", base + "?" + url.Values{"code": {"c"}, "state": {"other"}}.Encode(), nil, "state does not match"},
		{"no state", "GET", base + "?code=c", nil, "state does not match"},
		{"state twice", "GET", base + "?code=c&state=" + state + "&state=" + state, nil, "more than once"},
		{"code twice", "GET", base + "?code=c&code=d&state=" + state, nil, "more than once"},
		{"no code", "GET", base + "?state=" + state, nil, "neither a code nor an error"},
		{"other path", "GET", strings.TrimSuffix(base, "/cb") + "/favicon.ico", nil, "not at this path"},
		{"root", "GET", strings.TrimSuffix(base, "/cb") + "/?" + good.Encode(), nil, "not at this path"},
		{"POST", "POST", base + "?" + good.Encode(), nil, "a GET request"},
		{"other host", "GET", base + "?" + good.Encode(), map[string]string{"Host": "evil.example:" + strconv.Itoa(l.Port())}, "only for the redirect"},
		{"no cookie", "GET", base + "?" + good.Encode(), nil, "carries no cookie"},
		{"another login's cookie", "GET", base + "?" + good.Encode(), map[string]string{"Cookie": l.cookie + "=not-" + l.secret}, "carries no cookie"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if h := tc.header["Host"]; h != "" {
				req.Host = h
			}
			if c := tc.header["Cookie"]; c != "" {
				req.Header.Set("Cookie", c)
			}
			resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			if !strings.Contains(string(b), tc.want) {
				t.Errorf("page does not say %q:\n%s", tc.want, b)
			}
			if strings.Contains(string(b), "the-code") {
				t.Errorf("the page repeats the code:\n%s", b)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
		})
	}
	select {
	case r := <-l.got:
		t.Fatalf("a bad request was taken as the redirect: %+v", r)
	default:
	}

	// The real redirect is still accepted; localhost is the same host.
	done := make(chan string, 1)
	go func() {
		_, page := get(t, strings.Replace(base, "127.0.0.1", "localhost", 1)+"?"+good.Encode(), withCookie(l))
		done <- page
	}()
	red, err := l.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if red.Code != "the-code" {
		t.Errorf("code %q", red.Code)
	}
	red.Finish(nil)
	if page := <-done; !strings.Contains(page, "Logged in") || !strings.Contains(page, "profile work") || !strings.Contains(page, "close this tab") {
		t.Errorf("success page:\n%s", page)
	}
}

// Exactly one redirect is accepted: a second one, even a copy of the first, gets 400 while
// the first waits for its outcome, and nothing once the listener is closed.
func TestSecondRedirectRefused(t *testing.T) {
	l := listen(t, Options{})
	u := redirectURL(l, url.Values{"code": {"c1"}, "state": {state}, "iss": {"https://idp.example"}})
	first := make(chan int, 1)
	go func() {
		status, _ := get(t, u, withCookie(l))
		first <- status
	}()
	red, err := l.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if red.Issuer != "https://idp.example" {
		t.Errorf("Issuer %q", red.Issuer)
	}
	status, page := get(t, u, withCookie(l))
	if status != http.StatusBadRequest || !strings.Contains(page, "already received its redirect") {
		t.Errorf("second redirect: %d\n%s", status, page)
	}
	red.Finish(errors.New("the identity provider refused the code (invalid_grant)"))
	if s := <-first; s != http.StatusBadRequest {
		t.Errorf("first redirect after a failed exchange: status %d, want 400", s)
	}
	l.Close()
	if _, err := http.Get(u); err == nil {
		t.Error("the listener still answers after Close")
	}
}

// A failed login's page says why, as text (no markup injection).
func TestFailurePage(t *testing.T) {
	l := listen(t, Options{})
	done := make(chan string, 1)
	go func() {
		_, page := get(t, redirectURL(l, url.Values{"error": {"access_denied"}, "state": {state}}), withCookie(l))
		done <- page
	}()
	red, err := l.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if red.Error != "access_denied" || red.Code != "" {
		t.Errorf("redirect %+v", red)
	}
	red.Finish(errors.New(`the login was denied <script>alert(1)</script>`))
	page := <-done
	if !strings.Contains(page, "Login failed") || !strings.Contains(page, "the login was denied") {
		t.Errorf("failure page:\n%s", page)
	}
	if strings.Contains(page, "<script>") {
		t.Errorf("the message went into the page unescaped:\n%s", page)
	}
}

// A client that sends half a request and stops holds up nobody: the redirect gets
// through on another connection, and the slow one is dropped.
func TestSlowClient(t *testing.T) {
	l := listen(t, Options{})
	slow, err := net.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(l.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /?state=%s&code=slow HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", state, l.Port()) // no end of headers

	done := make(chan int, 1)
	go func() {
		status, _ := get(t, redirectURL(l, url.Values{"code": {"fast"}, "state": {state}}), withCookie(l))
		done <- status
	}()
	red, err := l.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if red.Code != "fast" {
		t.Errorf("accepted code %q, want the complete request's", red.Code)
	}
	red.Finish(nil)
	if s := <-done; s != http.StatusOK {
		t.Errorf("status %d", s)
	}
	// The server drops the slow connection (after ReadTimeout): reading ends.
	slow.SetReadDeadline(time.Now().Add(ReadTimeout + 20*time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("the half-sent request got %s", resp.Status)
		}
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("the slow connection was not dropped: %v", err)
	}
}

// Wait ends with its context (cancel, timeout); Close makes a page that waits for an
// outcome say the login ended.
func TestWaitEndsAndClose(t *testing.T) {
	l := listen(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on a cancelled context: %v", err)
	}
	done := make(chan string, 1)
	go func() {
		_, page := get(t, redirectURL(l, url.Values{"code": {"c"}, "state": {state}}), withCookie(l))
		done <- page
	}()
	if _, err := l.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if page := <-done; !strings.Contains(page, "Back to authagent") {
		t.Errorf("page after Close:\n%s", page)
	}
}
