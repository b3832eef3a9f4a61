package loopback

import (
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

const target = "https://idp.example/authorize?client_id=cli&state=" + state

// browserClient keeps cookies, as a browser does, and follows no redirect.
func browserClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func fetch(t *testing.T, c *http.Client, raw string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(raw)
	if err != nil {
		t.Fatalf("GET %s: %v", raw, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// The browser opens the start page, not the authorization request: the start page sends
// it on with a cookie for 127.0.0.1 only (host-only, HttpOnly, SameSite=Lax), and only a
// redirect with that cookie is the login's. The same browser may open the start page
// again (the login page opened once more); the state never appears in the start URL.
func TestStartPage(t *testing.T) {
	l := listen(t, Options{Path: "/cb"})
	start := l.Start(target)
	if want := "http://127.0.0.1:" + strconv.Itoa(l.Port()) + StartPath; start != want {
		t.Fatalf("start URL %q, want %q", start, want)
	}
	b := browserClient(t)
	resp, _ := fetch(t, b, start)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != target {
		t.Fatalf("start page: %s, Location %q; want 302 to the authorization request", resp.Status, resp.Header.Get("Location"))
	}
	if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy %q", got)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v, want one", cookies)
	}
	c := cookies[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.Secure || len(c.Value) < 20 || strings.Contains(c.Value, state) {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax, path /, host-only, random", c)
	}
	raw := resp.Header.Values("Set-Cookie")[0]
	if strings.Contains(strings.ToLower(raw), "domain=") {
		t.Errorf("Set-Cookie %q names a domain; want a host-only cookie", raw)
	}

	// The same browser again: sent on again, the login goes on.
	if resp, _ := fetch(t, b, start); resp.StatusCode != http.StatusFound {
		t.Errorf("the start page opened again by the same browser: %s", resp.Status)
	}
	// A redirect without the cookie (another browser, a program that knows the state) is
	// refused, and the login goes on.
	good := redirectURL(l, url.Values{"code": {"c"}, "state": {state}})
	if resp, page := fetch(t, browserClient(t), good); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "carries no cookie") {
		t.Errorf("a redirect without the start page's cookie: %s\n%s", resp.Status, page)
	}
	done := make(chan int, 1)
	go func() {
		resp, _ := fetch(t, b, good)
		done <- resp.StatusCode
	}()
	red, err := l.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	red.Finish(nil)
	if got := <-done; got != http.StatusOK {
		t.Errorf("the redirect of the browser that opened the start page: %d", got)
	}
	if l.Reused() {
		t.Error("Reused after one browser")
	}
}

// A second browser at the start page (another program that read its address from a
// command line) ends the login: Wait says so, the second browser's page says so, and a
// redirect that comes after, even the first browser's, is refused.
func TestStartPageReused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before bool // the second browser comes before the first one's redirect is taken
	}{{"before the redirect", true}, {"while the code is exchanged", false}} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t, Options{})
			start := l.Start(target)
			first, second := browserClient(t), browserClient(t)
			if resp, _ := fetch(t, first, start); resp.StatusCode != http.StatusFound {
				t.Fatalf("first browser: %s", resp.Status)
			}
			good := redirectURL(l, url.Values{"code": {"c"}, "state": {state}})
			if !tc.before {
				done := make(chan struct{})
				go func() {
					defer close(done)
					fetch(t, first, good)
				}()
				red, err := l.Wait(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				resp, page := fetch(t, second, start)
				if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Login ended") {
					t.Errorf("second browser while the code is exchanged: %s\n%s", resp.Status, page)
				}
				if !l.Reused() {
					t.Error("Reused is false after a second browser opened the start page; the exchange would be taken")
				}
				red.Finish(errors.New("ended"))
				<-done
				return
			}
			resp, page := fetch(t, second, start)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Login ended") || !strings.Contains(page, "another program") || resp.Header.Get("Location") != "" {
				t.Errorf("second browser: %s, Location %q\n%s", resp.Status, resp.Header.Get("Location"), page)
			}
			if len(resp.Cookies()) != 0 {
				t.Errorf("the second browser got a cookie: %v", resp.Cookies())
			}
			if _, err := l.Wait(t.Context()); !errors.Is(err, ErrStartReused) {
				t.Errorf("Wait: %v, want ErrStartReused", err)
			}
			if resp, page := fetch(t, first, good); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "ended") {
				t.Errorf("the first browser's redirect after the login ended: %s\n%s", resp.Status, page)
			}
			if resp, _ := fetch(t, first, start); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("the start page after the login ended: %s", resp.Status)
			}
		})
	}
}

// The start page: localhost is sent to 127.0.0.1 (where the cookie must be) without using
// the start page up; another host, another method, or a listener that has no target yet
// get 400 and use nothing up; a redirect path may not be the start page's.
func TestStartPageRefusals(t *testing.T) {
	l := listen(t, Options{})
	port := strconv.Itoa(l.Port())
	if resp, _ := fetch(t, browserClient(t), l.origin()+StartPath); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("start page before Start: %s, want 400", resp.Status)
	}
	start := l.Start(target)
	resp, _ := fetch(t, browserClient(t), "http://localhost:"+port+StartPath)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != start || len(resp.Cookies()) != 0 {
		t.Errorf("start page at localhost: %s, Location %q, cookies %v; want 302 to %s", resp.Status, resp.Header.Get("Location"), resp.Cookies(), start)
	}
	req, _ := http.NewRequest(http.MethodGet, start, nil)
	req.Host = "evil.example:" + port
	if resp, err := browserClient(t).Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("start page for another host (DNS rebinding): %v, %v", resp, err)
	}
	for _, method := range []string{http.MethodPost, http.MethodHead} {
		req, _ := http.NewRequest(method, start, nil)
		if resp, err := browserClient(t).Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s start page: %v, %v", method, resp, err)
		}
	}
	// None of that used the start page up.
	if resp, _ := fetch(t, browserClient(t), start); resp.StatusCode != http.StatusFound {
		t.Errorf("the start page after refused requests: %s, want 302", resp.Status)
	}
	if l.Reused() {
		t.Error("refused requests ended the login")
	}
	if _, err := Listen(Options{State: state, Path: StartPath}); err == nil {
		t.Errorf("a redirect path of %s was taken", StartPath)
	}
}
