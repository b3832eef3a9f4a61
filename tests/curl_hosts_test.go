package tests

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestCurlWrapperKeepsTokenOnProfileHosts: every URL curl would request must be one of the
// profile's hosts, and redirects are not followed, so the headers cannot reach another host.
func TestCurlWrapperKeepsTokenOnProfileHosts(t *testing.T) {
	t.Parallel()
	needTools(t, "curl")
	e := newEnv(t, startSession(t))
	startAgent(t, e)
	secret := canary(t)
	var mu sync.Mutex
	leaked := false
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = leaked || strings.Contains(r.Header.Get("X-API-Key"), secret)
		mu.Unlock()
	}))
	t.Cleanup(other.Close)
	own := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/leak", http.StatusFound)
	}))
	t.Cleanup(own.Close)
	ownHost := strings.TrimPrefix(own.URL, "http://")
	addAPIKey(t, e, "hub", secret, "--header", "X-API-Key={secret}", "--host", ownHost)
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1) + "/x"

	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"a second URL on another host", []string{"curl", "--", "-s", own.URL + "/a", otherURL}, 1},
		{"the same, profile by name", []string{"curl", "hub", "--", "-s", own.URL + "/a", otherURL}, 1},
		{"a referer that names the profile's host", []string{"curl", "--", "-s", "-e", own.URL + "/", otherURL}, 1},
		{"following redirects", []string{"curl", "--", "-sL", own.URL + "/redir"}, 2},
		// URLs written as curl also reads them: no scheme, a scheme in capitals, a config
		// file with more URLs, a second set of requests.
		{"a URL without a scheme", []string{"curl", "hub", "--", "-s", own.URL + "/a", strings.TrimPrefix(otherURL, "http://")}, 1},
		{"a scheme in capitals", []string{"curl", "hub", "--", "-s", own.URL + "/a", strings.Replace(otherURL, "http://", "HTTP://", 1)}, 1},
		{"a config file", []string{"curl", "hub", "--", "-s", "-K", writeCurlConfig(t, e, otherURL), own.URL + "/a"}, 2},
		{"a second set of requests", []string{"curl", "hub", "--", "-s", own.URL + "/a", "--next", otherURL}, 2},
	} {
		r := run(t, e, "", tc.args...)
		if r.code != tc.code || r.stderr == "" {
			t.Errorf("%s: %s; want exit %d with a message", tc.name, r, tc.code)
		}
	}
	// Without -L the redirect is only reported, and the header stays home.
	if r := run(t, e, "", "curl", "--", "-s", "-o", "/dev/null", "-w", "%{http_code}", own.URL+"/redir"); r.code != 0 || r.stdout != "302" {
		t.Errorf("plain request: %s", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if leaked {
		t.Error("the other host received the profile's secret")
	}
}

// writeCurlConfig writes a curl config file that asks for url.
func writeCurlConfig(t *testing.T, e *env, url string) string {
	t.Helper()
	path := filepath.Join(e.dir, "curl.cfg")
	if err := os.WriteFile(path, []byte("url = \""+url+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
