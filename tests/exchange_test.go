package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/tests/idp"
)

// --- helpers ---

// putProfile defines a profile over the socket API, with its secret when secret is not "",
// as a client that knows the new keys would (`authagent add` has no flags for them yet).
func putProfile(t *testing.T, e *env, name string, spec map[string]any, secret string) {
	t.Helper()
	if secret != "" {
		spec["secret"] = secret
	}
	body, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if status, resp := apiDo(t, e, http.MethodPut, "/v1/profiles/"+name, bytes.NewReader(body)); status/100 != 2 {
		t.Fatalf("PUT /v1/profiles/%s: %d %s", name, status, resp)
	}
}

// waitProfileWithin waits until profile name is in state want and returns it.
func waitProfileWithin(t *testing.T, api *ipc.Client, name, want string, within time.Duration) *ipc.Profile {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		p, err := api.Profile(context.Background(), name)
		if err == nil && p.State == want {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("profile %s: %+v, %v; want state %s within %s", name, p, err, want, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// procScan reads the command line and environment of every process it may read, and
// returns the processes where either holds secret, and whether it read both of a process
// whose command line holds mark (with a non-empty environment): the proof that the scan
// saw what it was after.
func procScan(secret, mark string) (leaks []string, sawMark bool) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		cmdline, err1 := os.ReadFile(filepath.Join(dir, "cmdline"))
		environ, err2 := os.ReadFile(filepath.Join(dir, "environ"))
		for what, b := range map[string][]byte{"argv": cmdline, "environment": environ} {
			if bytes.Contains(b, []byte(secret)) {
				leaks = append(leaks, fmt.Sprintf("%s %s: %q", dir, what, bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
			}
		}
		if err1 == nil && err2 == nil && len(environ) > 0 && bytes.Contains(cmdline, []byte(mark)) {
			sawMark = true
		}
	}
	return leaks, sawMark
}

// --- an exchange command against a challenge-response broker ---

// brokerScript is an exchange command for the broker below, in POSIX sh: it reads the
// key id and secret as JSON on stdin, asks the broker for a challenge, answers it with
// SHA-256 over key id, secret, salt and challenge, and prints the broker's answer (a token
// and expires_in). The secret only ever goes through builtins and pipes, never into an
// argument. A careless script, it prints the secret on stderr when the broker refuses: the
// agent must scrub it.
const brokerScript = `set -eu
broker=$1
in=$(cat)
key=$(printf '%s' "$in" | sed -n 's/.*"key_id":"\([^"]*\)".*/\1/p')
secret=$(printf '%s' "$in" | sed -n 's/.*"secret":"\([^"]*\)".*/\1/p')
set -- $(curl -sSf "$broker/challenge?key_id=$key")
nonce=$1 salt=$2
mac=$(printf '%s:%s:%s:%s' "$key" "$secret" "$salt" "$nonce" | sha256sum | cut -d' ' -f1)
if ! answer=$(printf 'key_id=%s&nonce=%s&mac=%s' "$key" "$nonce" "$mac" | curl -sS --fail-with-body --data-binary @- "$broker/token"); then
	echo "broker refused key $key (secret $secret): $answer" >&2
	exit 1
fi
printf '%s\n' "$answer"
`

// broker is a tiny server with its own challenge-response login: GET /challenge gives a
// one-time nonce and a salt, POST /token takes the keyed hash and issues a token. While a
// challenge is asked for (the exchange command is running), it scans every process for the
// secret in its argv or environment.
type broker struct {
	t      *testing.T
	srv    *httptest.Server
	keyID  string
	secret string
	mark   string // in the command line of the exchange command

	mu      sync.Mutex
	pending map[string]string // nonce → salt
	issued  []string
	refuse  bool
	scans   int
	saw     int // scans that read the exchange command's argv and environment
	leaks   []string
}

func newBroker(t *testing.T, keyID, secret, mark string) *broker {
	b := &broker{t: t, keyID: keyID, secret: secret, mark: mark, pending: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /challenge", func(w http.ResponseWriter, r *http.Request) {
		leaks, saw := procScan(b.secret, b.mark)
		nonce, salt := randomHex(t, 16), randomHex(t, 8)
		b.mu.Lock()
		b.scans++
		if saw {
			b.saw++
		}
		b.leaks = append(b.leaks, leaks...)
		b.pending[nonce] = salt
		b.mu.Unlock()
		fmt.Fprintf(w, "%s %s\n", nonce, salt)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		nonce := r.PostForm.Get("nonce")
		b.mu.Lock()
		defer b.mu.Unlock()
		salt, ok := b.pending[nonce]
		delete(b.pending, nonce) // single use
		sum := sha256.Sum256([]byte(b.keyID + ":" + b.secret + ":" + salt + ":" + nonce))
		if !ok || b.refuse || r.PostForm.Get("key_id") != b.keyID || r.PostForm.Get("mac") != hex.EncodeToString(sum[:]) {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintln(w, `{"error":"denied"}`)
			return
		}
		tok := "brk-" + randomHex(t, 12)
		b.issued = append(b.issued, tok)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token":%q,"expires_in":60}`+"\n", tok)
	})
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *broker) state() (issued []string, scans, saw int, leaks []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.issued), b.scans, b.saw, slices.Clone(b.leaks)
}

// TestExchangeCommandChallengeResponse: an apikey profile in mode "command" and an
// externaljwt profile with stdin = "secret" keep a broker's API secret in the keyring and
// hand it to a script only on stdin; the script does the broker's challenge-response and
// the agent serves the token it gets, as gRPC metadata for the apikey profile. While the
// script runs, no process has the secret in its argv or environment; when the broker
// refuses, the script's stderr (which prints the secret) reaches last_error scrubbed; the
// secret is in no log, list or config.
func TestExchangeCommandChallengeResponse(t *testing.T) {
	t.Parallel()
	needTools(t, "curl") // and sh, sed, sha256sum: Debian's essential packages
	secret := canary(t)
	dir := shortTempDir(t)
	script := writeScript(t, dir, "broker-login", brokerScript)
	b := newBroker(t, "a1b2c3", secret, script)
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	api := &ipc.Client{Socket: e.sock()}

	putProfile(t, e, "broker", map[string]any{
		"provider": "apikey", "mode": "command", "key_id": "a1b2c3",
		"command":  []string{script, b.srv.URL},
		"metadata": map[string]string{"auth-token": "{token}"},
		"hosts":    []string{"broker.example.com"},
	}, secret)
	putProfile(t, e, "broker-jwt", map[string]any{
		"provider": "externaljwt", "stdin": "secret", "key_id": "a1b2c3",
		"command": []string{script, b.srv.URL},
		"hosts":   []string{"jwt.broker.example.com"},
	}, secret)

	tok := strings.TrimSpace(runOK(t, e, "", "token", "broker").stdout)
	jwtTok := strings.TrimSpace(runOK(t, e, "", "token", "broker-jwt").stdout)
	issued, scans, saw, leaks := b.state()
	for _, want := range []string{tok, jwtTok} {
		if !slices.Contains(issued, want) {
			t.Errorf("the agent served %q, which the broker did not issue (issued %q)", want, issued)
		}
	}
	c := curlCredential(t, e, "/v1/credential?url=https://broker.example.com/rpc")
	if c.GRPCMetadata["auth-token"] != tok || c.Profile != "broker" {
		t.Errorf("credential for the broker: %+v; want auth-token metadata %q", c, tok)
	}
	p, err := api.Profile(context.Background(), "broker")
	if err != nil || p.ExpiresAt == nil || time.Until(*p.ExpiresAt) > time.Minute || time.Until(*p.ExpiresAt) < 30*time.Second {
		t.Errorf("broker: %+v, %v; want the 60 s expiry the broker gave", p, err)
	}
	if scans < 2 || saw != scans {
		t.Fatalf("the broker scanned the processes %d times and read the exchange command's argv and environment in %d of them; want every time, at least twice", scans, saw)
	}
	if len(leaks) > 0 {
		t.Errorf("the secret is in a process's argv or environment while the exchange command runs:\n%s", strings.Join(leaks, "\n"))
	}

	// The broker refuses: the token is dropped, the next fetch fails, and the script's
	// stderr, which holds the secret, reaches last_error without it.
	b.mu.Lock()
	b.refuse = true
	b.mu.Unlock()
	if status, body := apiDo(t, e, http.MethodPost, "/v1/profiles/broker/reject", nil); status != http.StatusNoContent {
		t.Fatalf("reject: %d %s", status, body)
	}
	r := run(t, e, "", "token", "broker")
	if r.code == 0 {
		t.Fatalf("token after the broker refused: %s", r)
	}
	p = waitProfileWithin(t, api, "broker", ipc.StateError, 15*time.Second)
	if !strings.Contains(p.LastError, "broker refused key a1b2c3 (secret [redacted])") {
		t.Errorf("last_error %q should carry the script's stderr, scrubbed", p.LastError)
	}

	list := runOK(t, e, "", "list", "--json")
	_, profiles := apiDo(t, e, http.MethodGet, "/v1/profiles", nil)
	for where, text := range map[string]string{
		"last_error": p.LastError, "token's stderr": r.stderr + r.stdout, "list": list.stdout + list.stderr,
		"GET /v1/profiles": string(profiles), "agent log": a.Log(), "config": readConfig(t, e),
	} {
		if strings.Contains(text, secret) {
			t.Errorf("%s contains the secret", where)
		}
	}
	if items := e.sess.keyringSearch(t, "service", "authagent"); !slices.ContainsFunc(items, func(it keyringItem) bool { return it.secret == secret }) {
		t.Errorf("the secret is not in the keyring")
	}
}

// waitExpired waits until the token profile name holds has expired: it has none, or its
// expires_at (whole seconds on the API) has passed.
func waitExpired(t *testing.T, api *ipc.Client, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, err := api.Profile(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if p.ExpiresAt == nil || time.Now().After(p.ExpiresAt.Add(time.Second+100*time.Millisecond)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("profile %s still has a token expiring at %s", name, p.ExpiresAt)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// --- RFC 8693 against the OpenID provider ---

// exchangeSetup is an agent with a device login profile "work" at a real OpenID provider
// whose hosts let its token go to the provider's token endpoint (127.0.0.1).
func exchangeSetup(t *testing.T, opts idp.Options) *deviceSetup {
	t.Helper()
	s := &deviceSetup{idp: idp.Start(t, opts), env: newEnv(t, startSession(t))}
	s.agent = startAgent(t, s.env)
	s.api = &ipc.Client{Socket: s.env.sock()}
	runOK(t, s.env, "", "add", "work", "--provider", "devicecode", "--issuer", s.idp.Issuer(),
		"--client-id", s.idp.ClientID(), "--host", "api.example.com", "--host", "127.0.0.1")
	s.login(t)
	return s
}

func exchangeSpec(p *idp.IdP, extra map[string]any) map[string]any {
	id, _ := p.ServiceClient()
	spec := map[string]any{"provider": "apikey", "mode": "token_exchange", "key_id": id, "token_url": p.TokenEndpoint()}
	for k, v := range extra {
		spec[k] = v
	}
	return spec
}

// TestTokenExchangeFromLogin: from one device login, two profiles get tokens for their
// own audiences by RFC 8693 at the provider, which takes them as the user's. Each expires
// no later than the login's token. When the login is gone (logout), the exchanges need a
// login too, once their tokens expire, and say where; after a new login they trade again
// by themselves. Nothing is retried meanwhile.
func TestTokenExchangeFromLogin(t *testing.T) {
	t.Parallel()
	// Tokens live long enough that the subject a trade gets (at least a quarter of its
	// lifetime left) outlives the 2 s an arriving token must have.
	s := exchangeSetup(t, idp.Options{AccessTokenLifetime: 10 * time.Second, ExchangedTokenLifetime: time.Hour})
	_, clientSecret := s.idp.ServiceClient()
	for name, aud := range map[string]string{"orders": "https://orders.example.com", "billing": "https://billing.example.com"} {
		putProfile(t, s.env, name, exchangeSpec(s.idp, map[string]any{
			"subject_profile": "work", "audience": aud, "hosts": []string{strings.TrimPrefix(aud, "https://")},
		}), clientSecret)
	}

	orders := strings.TrimSpace(runOK(t, s.env, "", "token", "orders").stdout)
	billing := strings.TrimSpace(runOK(t, s.env, "", "token", "billing").stdout)
	work := s.token(t)
	for name, tok := range map[string]string{"orders": orders, "billing": billing} {
		sub, err := s.idp.AccessTokenSubject(tok)
		if err != nil || sub != idp.Username {
			t.Errorf("%s: the provider takes its token as %q, %v; want the user %q", name, sub, err, idp.Username)
		}
		if tok == work {
			t.Errorf("%s serves the login's own token", name)
		}
	}
	var auds []string
	for _, ex := range s.idp.TokenExchanges() {
		auds = append(auds, ex.Audience...)
		if ex.Subject != idp.Username || ex.SubjectTokenType != "urn:ietf:params:oauth:token-type:access_token" {
			t.Errorf("exchange %+v: want the user's access token as subject", ex)
		}
	}
	slices.Sort(auds)
	if want := []string{"https://billing.example.com", "https://orders.example.com"}; !slices.Equal(slices.Compact(auds), want) {
		t.Errorf("audiences exchanged for: %q, want %q", auds, want)
	}
	if n := s.idp.TokenRequests()["urn:ietf:params:oauth:grant-type:device_code"]; n != 1 {
		t.Errorf("%d device logins, want the one", n)
	}
	wp, _ := s.api.Profile(context.Background(), "work")
	op, _ := s.api.Profile(context.Background(), "orders")
	if wp.ExpiresAt == nil || op.ExpiresAt == nil || op.ExpiresAt.After(wp.ExpiresAt.Add(time.Second)) || time.Until(*op.ExpiresAt) > 11*time.Second {
		t.Errorf("orders expires at %v, work at %v: the exchanged token (1 h at the provider) must not outlive the login's", op.ExpiresAt, wp.ExpiresAt)
	}

	// The login ends: once their tokens expire, the exchanges need a login too, and say
	// where; nothing is retried meanwhile.
	runOK(t, s.env, "", "logout", "work")
	waitExpired(t, s.api, "orders")
	if r := run(t, s.env, "", "token", "orders"); r.code == 0 || !strings.Contains(r.stderr, "authagent login work") {
		t.Errorf("token orders after work logged out and its token expired: %s", r)
	}
	p := waitProfileWithin(t, s.api, "orders", ipc.StateNeedsLogin, 10*time.Second)
	if !strings.Contains(p.LastError, "authagent login work") {
		t.Errorf("orders: last_error %q should say to log in to work", p.LastError)
	}
	exchanges := s.idp.TokenRequests()["urn:ietf:params:oauth:grant-type:token-exchange"]
	time.Sleep(3 * time.Second)
	if n := s.idp.TokenRequests()["urn:ietf:params:oauth:grant-type:token-exchange"]; n != exchanges {
		t.Errorf("%d exchange requests while the login is gone", n-exchanges)
	}

	// A new login: orders, which waited for it, trades again by itself; billing, which
	// nobody asked for meanwhile, on the next request.
	s.login(t)
	waitProfileWithin(t, s.api, "orders", ipc.StateValid, 20*time.Second)
	tok := strings.TrimSpace(runOK(t, s.env, "", "token", "orders").stdout)
	if err := s.idp.CheckAccessToken(tok); err != nil || tok == orders {
		t.Errorf("orders after a new login: a new token the provider takes? %v (same as before: %v)", err, tok == orders)
	}
	if tok := strings.TrimSpace(runOK(t, s.env, "", "token", "billing").stdout); s.idp.CheckAccessToken(tok) != nil {
		t.Errorf("billing after a new login: a token the provider refuses")
	}
	for where, text := range map[string]string{"agent log": s.agent.Log(), "config": readConfig(t, s.env)} {
		if strings.Contains(text, clientSecret) || strings.Contains(text, work) {
			t.Errorf("%s contains the client secret or the subject token", where)
		}
	}
}

// TestTokenExchangePushedSubject: a token pushed into a token exchange profile is traded
// at the provider at once; once it expired there (the agent cannot know when: it is
// opaque), the provider refuses it (invalid_request), and the profile needs a new push,
// says so, and asks no more.
func TestTokenExchangePushedSubject(t *testing.T) {
	t.Parallel()
	const life = 10 * time.Second // the subject's, at the provider
	// Traded tokens live 6 s: one must arrive with at least 2 s left, counted from when the
	// request left, so 3 s tokens left 1 s for the exchange's round trip (less when the
	// provider's whole-second expires_in rounds down); 6 s leave 4 s. The agent trades
	// again at the 5 s floor (75 % ± 10 % of 6 s is at most 5.1 s); that token expires
	// about 11 s after the push, which waitExpired below waits out.
	s := exchangeSetup(t, idp.Options{AccessTokenLifetime: life, ExchangedTokenLifetime: 6 * time.Second})
	_, clientSecret := s.idp.ServiceClient()
	putProfile(t, s.env, "pushed", exchangeSpec(s.idp, map[string]any{"subject_token": "pushed", "hosts": []string{"orders.example.com"}}), clientSecret)
	p := waitProfileWithin(t, s.api, "pushed", ipc.StateNeedsLogin, 15*time.Second)
	if !strings.Contains(p.LastError, "authagent set-token pushed") || !p.Can("push") {
		t.Errorf("before a push: %+v; want needs_login saying how to push", p)
	}

	// Opaque: its expiry is the provider's secret. Asked with 7 s left, it has at least 5 s
	// (a token fetched less than 5 s ago is served as it is), time enough to be traded.
	subject := strings.TrimSpace(runOK(t, s.env, "", "token", "work", "--min-valid", "7s").stdout)
	runOK(t, s.env, subject, "set-token", "pushed")
	tok := strings.TrimSpace(runOK(t, s.env, "", "token", "pushed").stdout)
	if sub, err := s.idp.AccessTokenSubject(tok); err != nil || sub != idp.Username || tok == subject {
		t.Errorf("the pushed token traded: %q, %v", sub, err)
	}

	time.Sleep(life + 500*time.Millisecond) // the subject has expired at the provider
	waitExpired(t, s.api, "pushed")
	if r := run(t, s.env, "", "token", "pushed"); r.code == 0 || !strings.Contains(r.stderr, "authagent set-token pushed") {
		t.Errorf("token pushed after its subject expired: %s", r)
	}
	p = waitProfileWithin(t, s.api, "pushed", ipc.StateNeedsLogin, 10*time.Second)
	if !strings.Contains(p.LastError, "invalid_request") || !strings.Contains(p.LastError, "authagent set-token pushed") || strings.Contains(p.LastError, subject) {
		t.Errorf("after the subject expired: last_error %q; want the refusal and how to push a new one, without the token", p.LastError)
	}
	n := len(s.idp.TokenExchanges())
	requests := s.idp.TokenRequests()["urn:ietf:params:oauth:grant-type:token-exchange"]
	time.Sleep(3 * time.Second)
	if got := s.idp.TokenRequests()["urn:ietf:params:oauth:grant-type:token-exchange"]; got != requests || len(s.idp.TokenExchanges()) != n {
		t.Errorf("%d more exchange requests after the refusal, want none", got-requests)
	}

	runOK(t, s.env, s.token(t), "set-token", "pushed")
	waitProfileWithin(t, s.api, "pushed", ipc.StateValid, 10*time.Second)
	if strings.Contains(s.agent.Log(), subject) {
		t.Error("the agent log contains the pushed subject token")
	}
}

// TestTokenExchangeStoredIDToken: a long-lived ID token stored as the profile's secret is
// traded for short access tokens (subject_token_type = "id_token"); when it expires, the
// profile needs a new one at once, without asking the provider, and says how to store it.
func TestTokenExchangeStoredIDToken(t *testing.T) {
	t.Parallel()
	s := exchangeSetup(t, idp.Options{AccessTokenLifetime: 30 * time.Second, IDTokenLifetime: 12 * time.Second, ExchangedTokenLifetime: time.Hour})
	idToken := strings.TrimSpace(runOK(t, s.env, "", "token", "work", "--id-token").stdout)
	putProfile(t, s.env, "day", exchangeSpec(s.idp, map[string]any{"subject_token_type": "id_token", "key_id": "", "hosts": []string{"orders.example.com"}}), idToken)

	// Without a client secret (the secret is the subject) the service client cannot
	// authenticate at this provider: the agent says what to change.
	p := waitProfileWithin(t, s.api, "day", ipc.StateNeedsLogin, 15*time.Second)
	if !strings.Contains(p.LastError, "invalid_client") {
		t.Errorf("no client authentication: last_error %q", p.LastError)
	}

	// The same ID token pushed, with the client secret stored, is traded.
	id, clientSecret := s.idp.ServiceClient()
	putProfile(t, s.env, "day", exchangeSpec(s.idp, map[string]any{"key_id": id, "subject_token": "pushed", "subject_token_type": "id_token", "hosts": []string{"orders.example.com"}}), clientSecret)
	runOK(t, s.env, idToken, "set-token", "day")
	tok := strings.TrimSpace(runOK(t, s.env, "", "token", "day").stdout)
	if sub, err := s.idp.AccessTokenSubject(tok); err != nil || sub != idp.Username {
		t.Errorf("the ID token traded: %q, %v", sub, err)
	}
	ex := s.idp.TokenExchanges()
	if len(ex) == 0 || ex[len(ex)-1].SubjectTokenType != "urn:ietf:params:oauth:token-type:id_token" {
		t.Fatalf("exchanges %+v: want one with an ID token as subject", ex)
	}
	pr, _ := s.api.Profile(context.Background(), "day")
	if exp := jwtExp(t, idToken); pr.ExpiresAt == nil || pr.ExpiresAt.After(exp) {
		t.Errorf("day expires at %v, after its ID token (%s)", pr.ExpiresAt, exp)
	}

	// The ID token expires: the next request finds the profile needs a new one, without
	// asking the provider, and says how to push it.
	time.Sleep(time.Until(jwtExp(t, idToken)) + 100*time.Millisecond)
	waitExpired(t, s.api, "day")
	requests := s.idp.TokenRequests()["urn:ietf:params:oauth:grant-type:token-exchange"]
	if r := run(t, s.env, "", "token", "day"); r.code == 0 || !strings.Contains(r.stderr, "expired") || !strings.Contains(r.stderr, "authagent set-token day") {
		t.Errorf("token day after its ID token expired: %s", r)
	}
	p = waitProfileWithin(t, s.api, "day", ipc.StateNeedsLogin, 10*time.Second)
	if !strings.Contains(p.LastError, "authagent set-token day") {
		t.Errorf("after the ID token expired: last_error %q", p.LastError)
	}
	time.Sleep(2 * time.Second)
	if got := s.idp.TokenRequests()["urn:ietf:params:oauth:grant-type:token-exchange"]; got != requests {
		t.Errorf("%d exchange requests with an expired subject, want none", got-requests)
	}
}
