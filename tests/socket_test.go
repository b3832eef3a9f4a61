package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authagent/authagent/ipc"
)

// TestOtherUserForbidden: another local user who can reach the socket (every directory
// down to it, and the socket, left open by mistake) gets 403 forbidden on every route of
// the API (ipc/testdata/routes.txt, which ipc/server's TestRouteList keeps equal to the agent's
// route table) and on paths and methods the API does not have. Nothing changes: no event,
// the same config file, keyring and profiles. No answer holds a secret, and the agent logs
// one line for each refusal.
func TestOtherUserForbidden(t *testing.T) {
	t.Parallel()
	needRoot(t)
	needTools(t, "useradd", "userdel", "curl")
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	secret, sigSecret := canary(t), canary(t)
	addAPIKey(t, e, "hub", secret, hubFlags()...)
	dci, _ := json.Marshal(map[string]any{"provider": "apikey", "mode": "sigv4", "key_id": "AKIDEXAMPLE",
		"region": "us-east-1", "service": "api", "hosts": []string{"127.0.0.1"}, "secret": sigSecret})
	if status, body := apiDo(t, e, http.MethodPut, "/v1/profiles/dci", bytes.NewReader(dci)); status != http.StatusNoContent {
		t.Fatalf("PUT /v1/profiles/dci: %d %s", status, body)
	}
	runOK(t, e, "", "add", "jwt", "--provider", "externaljwt", "--host", "jwt.example.com")
	tok := makeJWT(t, map[string]any{"sub": "owner", "exp": time.Now().Add(time.Hour).Unix()})
	runOK(t, e, tok+"\n", "set-token", "jwt")
	secrets := map[string]string{"hub's API key": secret, "dci's SigV4 secret": sigSecret, "jwt's token": tok}
	other := addUser(t)

	// Loosened by mistake: every directory down to the socket, and the socket, open to all.
	sock := e.sock()
	for _, p := range []string{e.dir, filepath.Dir(sock), sock} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}

	// What must not change.
	keyring := func() []keyringItem {
		items := e.sess.keyringSearch(t, "service", "authagent")
		slices.SortFunc(items, func(a, b keyringItem) int { return strings.Compare(a.label+a.secret, b.label+b.secret) })
		return items
	}
	profiles := func() string {
		status, body := apiDo(t, e, http.MethodGet, "/v1/profiles", nil)
		if status != http.StatusOK {
			t.Fatalf("GET /v1/profiles: %d %s", status, body)
		}
		return string(body)
	}
	configBefore, keyringBefore, profilesBefore := readConfig(t, e), keyring(), profiles()
	events := watchEvents(t, e)

	reqs := otherUserRequests(t, other)
	for _, rq := range reqs {
		what := "uid " + strconv.Itoa(int(other.uid)) + " " + rq.method + " " + rq.target
		status, head, body := rq.send(t, other, sock)
		wantAPIError(t, what, status, []byte(body), http.StatusForbidden, "forbidden")
		for name, s := range secrets {
			if strings.Contains(head+body, s) {
				t.Errorf("%s: the answer to another user holds %s:\n%s%s", what, name, head, body)
			}
		}
	}

	// One log line per refusal, naming the user and the path.
	uidField := "peer_uid=" + strconv.Itoa(int(other.uid)) + " "
	var refusals []string
	refused := func() []string {
		var paths []string
		for line := range strings.Lines(a.Log()) {
			if strings.Contains(line, uidField) && strings.Contains(line, "refused connection from another user") {
				path := "(no path in: " + strings.TrimSpace(line) + ")"
				if m := logPath.FindStringSubmatch(line); m != nil {
					path = m[1]
				}
				paths = append(paths, path)
			}
		}
		return paths
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if refusals = refused(); len(refusals) >= len(reqs) || time.Now().After(deadline) {
			break
		}
	}
	var wantPaths []string
	for _, rq := range reqs {
		wantPaths = append(wantPaths, rq.path())
	}
	slices.Sort(refusals)
	slices.Sort(wantPaths)
	if !slices.Equal(refusals, wantPaths) {
		t.Errorf("the agent logged refusals of uid %d for the paths\n%q\nwant one for each request:\n%q", other.uid, refusals, wantPaths)
	}

	// Nothing changed: the first event after the refusals is the owner's own change.
	runOK(t, e, "", "add", "marker", "--provider", "externaljwt", "--host", "marker.example.com")
	for marked := false; !marked; {
		select {
		case ev, ok := <-events:
			switch {
			case !ok:
				t.Fatal("the owner's event stream ended")
			case ev.Profile.Name == "marker":
				marked = true
			default:
				t.Errorf("an event while another user was refused: %+v", ev)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("no event for the owner's profile marker within 15s")
		}
	}
	runOK(t, e, "", "remove", "marker")
	if got := readConfig(t, e); got != configBefore {
		t.Errorf("the config file changed while another user was refused:\nbefore:\n%s\nafter:\n%s", configBefore, got)
	}
	if got := keyring(); !slices.Equal(got, keyringBefore) {
		t.Errorf("the keyring changed while another user was refused: %d items before, %d after", len(keyringBefore), len(got))
	}
	if got := profiles(); got != profilesBefore {
		t.Errorf("the profiles changed while another user was refused:\nbefore %s\nafter  %s", profilesBefore, got)
	}
	// The same agent still serves the owner, with the secrets as they were.
	if st := agentStatus(t, e); st.PID != a.pid {
		t.Errorf("after the refusals, status answers from pid %d, want the agent %d", st.PID, a.pid)
	}
	if got := curlCredential(t, e, "/v1/profiles/hub/credential"); got.Token != secret {
		t.Errorf("the owner's hub credential after the refusals: token %q, want the secret", got.Token)
	}
	if got := strings.TrimSpace(runOK(t, e, "", "token", "jwt").stdout); got != tok {
		t.Errorf("the owner's jwt token after the refusals: %q, want the one pushed before", got)
	}
	if got := runOK(t, e, "", "sign", "dci", "--method", "GET", "--url", "https://127.0.0.1/").stdout; !strings.Contains(got, "Credential=AKIDEXAMPLE/") {
		t.Errorf("the owner's dci signature after the refusals:\n%s", got)
	}
}

// logPath finds the path in a refusal log line.
var logPath = regexp.MustCompile(`\bpath=(\S+)`)

// otherUserRequest is one request that the second user sends with curl.
type otherUserRequest struct {
	method, target string // target: path and query
	body           string // sent as JSON when not empty
}

func (rq otherUserRequest) path() string {
	p, _, _ := strings.Cut(rq.target, "?")
	return p
}

// otherUserRequests is every route of the API with a request that would change or reveal
// something if it were served, then paths and methods the API does not have.
func otherUserRequests(t *testing.T, other osUser) []otherUserRequest {
	t.Helper()
	evil, _ := json.Marshal(map[string]any{"provider": "apikey", "key_id": other.name,
		"headers": map[string]string{"X-API-Key": "{secret}"}, "hosts": []string{"evil.example.com"}, "secret": "the-other-users-secret"})
	evilTok := makeJWT(t, map[string]any{"sub": other.name, "exp": time.Now().Add(2 * time.Hour).Unix()})
	// By route; a route without an entry is sent to profile hub, with {} as its body
	// where it takes one.
	special := map[string]otherUserRequest{
		"GET /v1/credential":                 {target: "/v1/credential?url=" + url.QueryEscape("https://api.example.com/x")},
		"GET /v1/events":                     {target: "/v1/events?initial=true"},
		"GET /v1/profiles":                   {target: "/v1/profiles?url=" + url.QueryEscape("https://api.example.com/x")},
		"PUT /v1/profiles/{name}":            {target: "/v1/profiles/hub", body: string(evil)},
		"DELETE /v1/profiles/{name}":         {target: "/v1/profiles/jwt"},
		"GET /v1/profiles/{name}/credential": {target: "/v1/profiles/hub/credential?min_valid=0"},
		"POST /v1/profiles/{name}/logout":    {target: "/v1/profiles/jwt/logout"},
		"PUT /v1/profiles/{name}/secret":     {target: "/v1/profiles/hub/secret", body: `{"secret":"the-other-users-secret"}`},
		"POST /v1/profiles/{name}/sign":      {target: "/v1/profiles/dci/sign", body: `{"method":"GET","url":"https://127.0.0.1/"}`},
		"PUT /v1/profiles/{name}/token":      {target: "/v1/profiles/jwt/token", body: `{"token":"` + evilTok + `"}`},
	}
	var reqs []otherUserRequest
	for _, route := range apiRoutes(t) {
		method, pattern, _ := strings.Cut(route, " ")
		rq, ok := special[route]
		delete(special, route)
		if !ok {
			rq.target = strings.ReplaceAll(pattern, "{name}", "hub")
			if method == http.MethodPut || method == http.MethodPost {
				rq.body = "{}"
			}
		}
		rq.method = method
		reqs = append(reqs, rq)
	}
	for route := range special {
		t.Errorf("a request is set up for %s, which is not in the route list", route)
	}
	return append(reqs,
		otherUserRequest{method: "GET", target: "/"},
		otherUserRequest{method: "GET", target: "/v1/nope"},
		otherUserRequest{method: "GET", target: "/v2/status"},
		otherUserRequest{method: "POST", target: "/v1/status", body: "{}"},
		otherUserRequest{method: "PATCH", target: "/v1/profiles/hub", body: string(evil)},
	)
}

// send runs curl as u and returns the answer's status, header and body.
func (rq otherUserRequest) send(t *testing.T, u osUser, sock string) (status int, head, body string) {
	t.Helper()
	args := []string{"-sS", "-i", "--max-time", "30", "-w", "\n%{http_code}", "--unix-socket", sock, "-X", rq.method}
	if rq.body != "" {
		args = append(args, "-H", "Content-Type: application/json", "--data-binary", rq.body)
	}
	cmd := exec.CommandContext(t.Context(), "curl", append(args, "http://authagent"+rq.target)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=/"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl %s %s as uid %d: %v: %s", rq.method, rq.target, u.uid, err, stderr.String())
	}
	answer, code, _ := cutLast(stdout.String(), "\n")
	status, _ = strconv.Atoi(code)
	head, body, _ = strings.Cut(answer, "\r\n\r\n")
	return status, head, body
}

// apiRoutes is the socket API's route list, "METHOD /pattern" each, that ipc's
// TestRouteList keeps equal to the agent's route table.
func apiRoutes(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "ipc", "testdata", "routes.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			routes = append(routes, line)
		}
	}
	if len(routes) == 0 {
		t.Fatal("the route list ipc/testdata/routes.txt is empty")
	}
	return routes
}

// watchEvents follows the agent's events as the owner, from after the current profiles
// on; the channel closes with the test.
func watchEvents(t *testing.T, e *env) <-chan ipc.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := (&ipc.Client{Socket: e.sock()}).Watch(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); w.Close() })
	for range len(listProfiles(t, e).Profiles) {
		if ev, err := w.Next(); err != nil || ev.Type != "current" {
			t.Fatalf("the first events: %+v, %v; want one \"current\" for each profile", ev, err)
		}
	}
	ch := make(chan ipc.Event)
	go func() {
		defer close(ch)
		for {
			ev, err := w.Next()
			if err != nil {
				return
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

type osUser struct {
	name     string
	uid, gid uint32
}

// testUserPrefix starts the name of every user addUser makes: the prefix, the test
// process's pid, "-" and random hex.
const testUserPrefix = "aae2e"

// addUser creates a system user without a home, with a name of its own (tests in
// parallel each get theirs), and deletes it with userdel -r when the test ends. Users left
// by test processes that no longer run are deleted first.
func addUser(t *testing.T) osUser {
	t.Helper()
	removeStaleUsers(t)
	var name string
	for attempt := 0; ; attempt++ {
		b := make([]byte, 4)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		name = fmt.Sprintf("%s%d-%x", testUserPrefix, os.Getpid(), b)
		r := runIn(t, os.Environ(), "/", "", "useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name)
		if r.code == 0 {
			break
		}
		// Another test's useradd or userdel may hold the lock on /etc/passwd.
		if attempt >= 10 || !strings.Contains(r.stderr, "lock") {
			t.Fatalf("useradd %s: %s", name, r)
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	t.Cleanup(func() { deleteUser(t, name) })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	if int(uid) == os.Getuid() {
		t.Fatalf("the new user has our uid %d", uid)
	}
	return osUser{name: name, uid: uint32(uid), gid: uint32(gid)}
}

// deleteUser removes a user made by addUser, and its group and mail spool (userdel -r;
// there is no home to remove, which userdel only warns about).
func deleteUser(t *testing.T, name string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		r := runIn(t, os.Environ(), "/", "", "userdel", "-r", name)
		if r.code == 0 {
			return
		}
		if attempt >= 10 || !strings.Contains(r.stderr, "lock") {
			t.Errorf("userdel -r %s: %s", name, r)
			return
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
}

// removeStaleUsers deletes users that addUser made in test processes that no longer run
// (killed before their cleanup).
func removeStaleUsers(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return
	}
	for line := range strings.Lines(string(b)) {
		name, _, _ := strings.Cut(line, ":")
		digits, _, _ := strings.Cut(strings.TrimPrefix(name, testUserPrefix), "-")
		pid, err := strconv.Atoi(digits)
		if !strings.HasPrefix(name, testUserPrefix) || err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + digits); err == nil {
			continue // its test process still runs
		}
		// Another test may be removing it at the same time; either way it goes.
		runIn(t, os.Environ(), "/", "", "userdel", "-r", name)
	}
}

func TestBadRequestsKeepServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	secret := canary(t)
	addAPIKey(t, e, "hub", secret, hubFlags()...)

	tests := []struct {
		name, method, path string
		body               io.Reader
		wantStatus         int
		wantCode           string
	}{
		{"malformed JSON", "PUT", "/v1/profiles/x", strings.NewReader(`{"provider": "apikey",`), 400, "bad_request"},
		{"not JSON at all", "PUT", "/v1/profiles/x", strings.NewReader(`provider = "apikey"`), 400, "bad_request"},
		{"unknown profile credential", "GET", "/v1/profiles/nope/credential", nil, 404, "unknown_profile"},
		{"unknown profile", "GET", "/v1/profiles/nope", nil, 404, "unknown_profile"},
		{"remove unknown profile", "DELETE", "/v1/profiles/nope", nil, 404, "unknown_profile"},
		{"unmatched host", "GET", "/v1/credential?url=" + url.QueryEscape("https://unknown.example.net/x"), nil, 404, "no_profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := apiDo(t, e, tt.method, tt.path, tt.body)
			wantAPIError(t, tt.name, status, body, tt.wantStatus, tt.wantCode)
		})
	}

	// Valid JSON as far as it goes, so only the size is wrong. The agent answers before it
	// has read all of it, so the body is sent while the answer is read, as curl does.
	big := []byte(`{"provider":"` + strings.Repeat("a", 1<<20) + `"}`)
	t.Run("body over 1 MiB", func(t *testing.T) {
		head := fmt.Sprintf("PUT /v1/profiles/x HTTP/1.1\r\nHost: authagent\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(big))
		status, body := rawRequest(t, e.sock(), head, big)
		wantAPIError(t, "PUT of a body over 1 MiB", status, body, 413, "too_large")
	})
	t.Run("chunked body over 1 MiB", func(t *testing.T) {
		head := "PUT /v1/profiles/x HTTP/1.1\r\nHost: authagent\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
		chunked := fmt.Appendf(nil, "%x\r\n%s\r\n0\r\n\r\n", len(big), big)
		status, body := rawRequest(t, e.sock(), head, chunked)
		wantAPIError(t, "chunked PUT of a body over 1 MiB", status, body, 413, "too_large")
	})
	t.Run("curl body over 1 MiB", func(t *testing.T) {
		needTools(t, "curl")
		file := filepath.Join(t.TempDir(), "big.json")
		if err := os.WriteFile(file, big, 0o600); err != nil {
			t.Fatal(err)
		}
		r := runIn(t, e.environ(), e.dir, "", "curl", "-sS", "-w", "\n%{http_code}", "--unix-socket", e.sock(),
			"-X", "PUT", "-H", "Content-Type: application/json", "--data-binary", "@"+file, "http://authagent/v1/profiles/x")
		if r.code != 0 {
			t.Fatalf("curl: %s", r)
		}
		body, code, _ := cutLast(r.stdout, "\n")
		status, _ := strconv.Atoi(code)
		wantAPIError(t, "curl PUT of a body over 1 MiB", status, []byte(body), 413, "too_large")
	})

	t.Run("curl", func(t *testing.T) {
		status, body := curlAgent(t, e, "/v1/profiles/nope/credential")
		wantAPIError(t, "curl unknown profile", status, body, 404, "unknown_profile")
		status, body = curlAgent(t, e, "/v1/credential?url="+url.QueryEscape("https://unknown.example.net/"))
		wantAPIError(t, "curl unmatched host", status, body, 404, "no_profile")
	})

	if got := listProfiles(t, e).names(); len(got) != 1 || got[0] != "hub" {
		t.Errorf("after the bad requests list = %v, want [hub]", got)
	}
	if got := curlCredential(t, e, "/v1/profiles/hub/credential"); got.Headers["X-API-Key"] != secret {
		t.Errorf("after the bad requests: headers %v, want X-API-Key = the secret", got.Headers)
	}
	if got := runOK(t, e, "", "header", "hub").stdout; got != wantHubHeaderLines(secret) {
		t.Errorf("after the bad requests: authagent header hub = %q", got)
	}
	a.Stop()
}

// rawRequest sends head and body on a connection of its own, writing the body while it
// reads the answer, and returns the answer's status and body.
func rawRequest(t *testing.T, sock, head string, body []byte) (int, []byte) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	go func() {
		// The agent may hang up before taking it all; that is its right.
		io.WriteString(c, head)
		c.Write(body)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer body: %v", err)
	}
	return resp.StatusCode, b
}

// TestIdleClientDropped checks that connections that send nothing are closed by the agent
// (after about 5 s); the 15 s allowed here are a bound for a hung test, not a benchmark.
func TestIdleClientDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	startAgent(t, e)

	tests := []struct {
		name string
		send string // what the client sends before going quiet
		// keepAlive: send one whole request first and read its answer.
		keepAlive bool
	}{
		{name: "sends nothing"},
		{name: "stops in the middle of the headers", send: "GET /v1/status HTTP/1.1\r\nHost: authagent\r\n"},
		{name: "stops in the middle of the body", send: "PUT /v1/profiles/x HTTP/1.1\r\nHost: authagent\r\nContent-Length: 100\r\n\r\n{\"provider\":"},
		{name: "idle after a request", keepAlive: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("unix", e.sock())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			if tt.keepAlive {
				if _, err := io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: authagent\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("first request: %v", err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Close {
					t.Fatalf("first request: status %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
				}
			}
			if tt.send != "" {
				if _, err := io.WriteString(c, tt.send); err != nil {
					t.Fatal(err)
				}
			}
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			// The agent may answer 408 before it hangs up; what counts is that it hangs up.
			_, err = io.Copy(io.Discard, br)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the agent kept an idle connection open for 15s")
			}
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("reading an idle connection: %v, want EOF", err)
			}
		})
	}

	// A watcher of the event stream sends nothing after its request, and is not idle.
	t.Run("event watcher stays connected", func(t *testing.T) {
		t.Parallel()
		req, err := http.NewRequestWithContext(t.Context(), "GET", "http://authagent/v1/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		hc := apiClient(e.sock())
		hc.Timeout = 0
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/events: status %d", resp.StatusCode)
		}
		time.Sleep(ipcClientIdle + 2*time.Second) // longer than the agent lets idle clients be
		addAPIKey(t, e, "late", "late-secret")
		events := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.Contains(sc.Text(), `"late"`) {
					events <- sc.Text()
					return
				}
			}
			events <- "stream ended: " + fmt.Sprint(sc.Err())
		}()
		select {
		case ev := <-events:
			if !strings.Contains(ev, `"type"`) {
				t.Errorf("no event for profile late on a watcher idle for %s: %s", ipcClientIdle+2*time.Second, ev)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("no event for profile late within 15s")
		}
	})
}

// ipcClientIdle is how long the agent lets a client send nothing (issue 2: 5 s).
const ipcClientIdle = 5 * time.Second

func TestParallelClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	secret := canary(t)
	addAPIKey(t, e, "hub", secret, hubFlags()...)

	const clients = 200
	start := make(chan struct{})
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- fetchOverOwnConn(e.sock(), i, secret)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Error(err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d parallel clients failed", failed, clients)
	}
	a.Stop()
}

// fetchOverOwnConn asks for hub's credential on a connection of its own, by profile name
// for even i and by URL for odd i, and checks the headers.
func fetchOverOwnConn(sock string, i int, secret string) error {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return fmt.Errorf("client %d: dial: %w", i, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	path := "/v1/profiles/hub/credential"
	if i%2 == 1 {
		path = "/v1/credential?url=" + url.QueryEscape("https://api.example.com/item/"+strconv.Itoa(i))
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: authagent\r\nConnection: close\r\n\r\n", path); err != nil {
		return fmt.Errorf("client %d: write: %w", i, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("client %d: read: %w", i, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("client %d: read body: %w", i, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("client %d: status %d: %s", i, resp.StatusCode, body)
	}
	var cred credential
	if err := json.Unmarshal(body, &cred); err != nil {
		return fmt.Errorf("client %d: %w: %s", i, err, body)
	}
	want := wantHubHeaders(secret)
	if cred.Profile != "hub" || len(cred.Headers) != len(want) || cred.Headers["X-API-Key"] != want["X-API-Key"] || cred.Headers["X-API-Key-ID"] != want["X-API-Key-ID"] {
		return fmt.Errorf("client %d: got profile %q headers %v, want hub's", i, cred.Profile, cred.Headers)
	}
	return nil
}

func TestSecondAgentAndStaleSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	// A socket directory left open to others is closed again; the socket is ours alone.
	dir := filepath.Dir(e.sock())
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	first := startAgent(t, e)
	for _, f := range []struct {
		path string
		want os.FileMode
	}{{dir, 0o700}, {e.sock(), 0o600}} {
		fi, err := os.Lstat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != f.want {
			t.Errorf("%s has mode %#o, want %#o", f.path, got, f.want)
		}
	}
	secret := canary(t)
	addAPIKey(t, e, "hub", secret, hubFlags()...)

	// A second agent on the live socket refuses to start.
	r := run(t, e, "", "serve")
	if r.code != 1 {
		t.Errorf("a second authagent serve: exit %d, want 1: %s", r.code, r)
	}
	if msg := strings.ToLower(r.stderr); !strings.Contains(msg, "running") || !strings.Contains(msg, e.sock()) {
		t.Errorf("a second authagent serve says %q; want it to mention the agent running on %s", r.stderr, e.sock())
	}
	if st := agentStatus(t, e); st.PID != first.pid {
		t.Errorf("after a second serve, status answers from pid %d, want the first agent %d", st.PID, first.pid)
	}

	// SIGKILL leaves the socket file behind; the next agent replaces it.
	first.Kill()
	if fi, err := os.Lstat(e.sock()); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("after SIGKILL the socket file is not there (%v); this test needs a stale socket", err)
	}
	second := startAgent(t, e)
	if st := agentStatus(t, e); st.PID != second.pid {
		t.Errorf("status answers from pid %d, want the new agent %d", st.PID, second.pid)
	}
	if got := runOK(t, e, "", "header", "hub").stdout; got != wantHubHeaderLines(secret) {
		t.Errorf("authagent header hub from the new agent = %q", got)
	}
	second.Stop()
}

func TestStartPrintsEnvironment(t *testing.T) {
	t.Parallel()
	needTools(t, "sh")
	sess := startSession(t)
	// No AUTHAGENT_SOCK: `start` picks $XDG_RUNTIME_DIR/authagent/agent.sock and prints it.
	e := newEnv(t, sess).with("AUTHAGENT_SOCK", "")
	wantSock := filepath.Join(e.vars["XDG_RUNTIME_DIR"], "authagent", "agent.sock")

	r := runIn(t, e.environ(), e.dir, "", "sh", "-c", `eval "$(authagent start)" && echo "sock=$AUTHAGENT_SOCK" && authagent status`)
	if pid, ok := pidFromStatus(r.stdout); ok {
		t.Cleanup(func() { stopDetached(t, pid) })
	}
	if r.code != 0 {
		t.Fatalf(`sh -c 'eval "$(authagent start)"; authagent status': %s`, r)
	}
	if !strings.Contains(r.stdout, "sock="+wantSock+"\n") {
		t.Errorf("after eval, AUTHAGENT_SOCK is not %s:\n%s", wantSock, r.stdout)
	}
	pid, ok := pidFromStatus(r.stdout)
	if !ok {
		t.Fatalf("authagent status printed no pid:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "Agent pid "+strconv.Itoa(pid)+"\n") {
		t.Errorf("eval of `authagent start` did not echo the agent's pid %d:\n%s", pid, r.stdout)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte("serve")) {
		t.Errorf("pid %d is not an `authagent serve` (%v): %q", pid, err, cmdline)
	}

	with := e.with("AUTHAGENT_SOCK", wantSock)
	second := runOK(t, with, "", "start")
	wantLine := "AUTHAGENT_SOCK=" + wantSock + "; export AUTHAGENT_SOCK;"
	if !strings.Contains(second.stdout, wantLine) || !strings.Contains(second.stdout, "Agent pid "+strconv.Itoa(pid)+";") {
		t.Errorf("a second `authagent start` printed\n%s\nwant %q and pid %d", second.stdout, wantLine, pid)
	}
	again := runOK(t, e, "", "start")
	if again.stdout != second.stdout {
		t.Errorf("`authagent start` without AUTHAGENT_SOCK printed\n%s\nwant the same as with it:\n%s", again.stdout, second.stdout)
	}
	fish := runOK(t, e, "", "start", "--fish")
	if !strings.Contains(fish.stdout, "set -x AUTHAGENT_SOCK "+wantSock) || !strings.Contains(fish.stdout, strconv.Itoa(pid)) {
		t.Errorf("authagent start --fish printed\n%s\nwant set -x AUTHAGENT_SOCK %s and pid %d", fish.stdout, wantSock, pid)
	}
	if st := agentStatus(t, with); st.PID != pid {
		t.Errorf("status answers from pid %d, want %d", st.PID, pid)
	}
	log := filepath.Join(e.vars["XDG_STATE_HOME"], "authagent", "agent.log")
	if b, err := os.ReadFile(log); err != nil || !bytes.Contains(b, []byte(strconv.Itoa(pid))) {
		t.Errorf("the background agent's log %s does not mention its pid %d (%v):\n%s", log, pid, err, b)
	}
}

// pidFromStatus finds the pid in `authagent status` output ("agent dev, pid 123, …").
func pidFromStatus(out string) (int, bool) {
	_, rest, ok := strings.Cut(out, ", pid ")
	if !ok {
		return 0, false
	}
	n, _, _ := strings.Cut(rest, ",")
	pid, err := strconv.Atoi(n)
	return pid, err == nil && pid > 0
}

// stopDetached stops an agent that `authagent start` left running: it is not our child,
// so it is watched through /proc until it is gone (or a zombie of its new parent).
func stopDetached(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return
	}
	gone := func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		_, after, _ := bytes.Cut(b, []byte(") "))
		return len(after) > 0 && after[0] == 'Z'
	}
	for range 500 {
		if gone() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("the background agent %d did not stop on SIGTERM; killing it", pid)
	syscall.Kill(pid, syscall.SIGKILL)
}
