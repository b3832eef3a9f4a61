package tests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws/credentials"
	v1signer "github.com/aws/aws-sdk-go/aws/signer/v4"

	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/tests/idp"
)

// --- client_credentials against the zitadel OP ---

func addClientCredentials(t *testing.T, e *env, name, clientID, secret string, p *idp.IdP) {
	t.Helper()
	addAPIKey(t, e, name, secret, "--mode", "client_credentials", "--key-id", clientID,
		"--token-url", p.TokenEndpoint(), "--scope", "api", "--host", "api.example.com")
}

// TestClientCredentialsAgainstRealIdP: an apikey profile in client_credentials mode trades
// its key id and secret for access tokens at a real OAuth server, which accepts them, and
// gets a new one ahead of each expiry without anyone asking.
func TestClientCredentialsAgainstRealIdP(t *testing.T) {
	t.Parallel()
	// Long enough that the proactive refresh (75 % ± 10 % of the lifetime, at least 5 s
	// after the last fetch) comes at least 1.2 s before the token expires.
	const life = 8 * time.Second
	p := idp.Start(t, idp.Options{AccessTokenLifetime: life})
	id, secret := p.ServiceClient()
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	addClientCredentials(t, e, "svc", id, secret, p)

	tok := strings.TrimSpace(runOK(t, e, "", "token", "svc").stdout)
	sub, err := p.AccessTokenSubject(tok)
	if err != nil {
		t.Fatalf("the IdP refuses the token the agent got: %v", err)
	}
	if sub != id {
		t.Errorf("token subject %q, want the service client %q", sub, id)
	}
	if got, want := runOK(t, e, "", "header", "svc").stdout, "Authorization: Bearer "+tok+"\n"; got != want {
		t.Errorf("header svc = %q, want %q", got, want)
	}

	// For 3.5 lifetimes, the test asks with min_valid=0, which never forces a refresh while
	// the token is valid: every token request the IdP sees is the agent refreshing on its own.
	before := len(p.ServiceTokensIssued())
	seen := map[string]bool{}
	deadline := time.Now().Add(7 * life / 2)
	for time.Now().Before(deadline) {
		status, body := apiDo(t, e, http.MethodGet, "/v1/profiles/svc/credential?min_valid=0", nil)
		var c credential
		if err := json.Unmarshal(body, &c); status != http.StatusOK || err != nil {
			t.Fatalf("credential: %d %s", status, body)
		}
		if err := p.CheckAccessToken(c.Token); err != nil {
			t.Fatalf("the agent served a token the IdP refuses: %v", err)
		}
		if c.TokenType != "Bearer" || c.Headers["Authorization"] != "Bearer "+c.Token {
			t.Errorf("credential %s", body)
		}
		seen[c.Token] = true
		time.Sleep(life / 4)
	}
	issued := p.ServiceTokensIssued()
	if n := len(issued) - before; n < 3 {
		t.Errorf("%d client credentials tokens issued in 3.5 lifetimes, want at least 3", n)
	}
	if len(seen) < 3 {
		t.Errorf("%d distinct tokens served in 3.5 lifetimes, want at least 3", len(seen))
	}
	for i := 1; i < len(issued); i++ {
		if !issued[i].Issued.Before(issued[i-1].Expires) {
			t.Errorf("token %d was issued at %s, after token %d expired at %s: not refreshed ahead of expiry",
				i+1, issued[i].Issued.Format(time.RFC3339Nano), i, issued[i-1].Expires.Format(time.RFC3339Nano))
		}
	}

	// The client secret goes nowhere but the keyring and the token endpoint.
	list := runOK(t, e, "", "list", "--json")
	_, profiles := apiDo(t, e, http.MethodGet, "/v1/profiles", nil)
	for where, text := range map[string]string{"list": list.stdout + list.stderr, "GET /v1/profiles": string(profiles), "agent log": a.Log(), "config": readConfig(t, e)} {
		if strings.Contains(text, secret) {
			t.Errorf("%s contains the client secret", where)
		}
	}
	if items := e.sess.keyringSearch(t, "service", "authagent"); !slices.ContainsFunc(items, func(it keyringItem) bool { return it.secret == secret }) {
		t.Errorf("the client secret is not in the keyring")
	}
}

// TestClientCredentialsWrongSecret: a secret the OAuth server refuses puts the profile in
// needs_login with an error that says what is wrong, and the agent stops asking.
func TestClientCredentialsWrongSecret(t *testing.T) {
	t.Parallel()
	// 30 s: the token the right secret finally brings must arrive with at least 2 s left
	// and still be valid, with the profile in state valid, when the test looks (4 s tokens
	// left 2 s for the round trip and less for the checks after it).
	p := idp.Start(t, idp.Options{AccessTokenLifetime: 30 * time.Second})
	id, secret := p.ServiceClient()
	wrong := canary(t)
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)
	addClientCredentials(t, e, "svc", id, wrong, p)

	r := run(t, e, "", "token", "svc")
	if r.code == 0 || r.stdout != "" {
		t.Fatalf("token with a wrong secret: %s", r)
	}
	api := &ipc.Client{Socket: e.sock()}
	var prof *ipc.Profile
	waitFor(t, "state needs_login", func() bool {
		var err error
		prof, err = api.Profile(context.Background(), "svc")
		return err == nil && prof.State == ipc.StateNeedsLogin
	})
	t.Logf("token: %s", strings.TrimSpace(r.stderr))
	t.Logf("last_error: %s", prof.LastError)
	le := strings.ToLower(prof.LastError)
	if !strings.Contains(le, "invalid_client") || !strings.Contains(le, "secret") {
		t.Errorf("last_error %q should say the server refused the client (invalid_client) and that the secret may be wrong", prof.LastError)
	}
	if !strings.Contains(prof.LastError, "authagent set-secret svc") {
		t.Errorf("last_error %q should say how to store the right secret", prof.LastError)
	}
	for where, text := range map[string]string{"last_error": prof.LastError, "token's stderr": r.stderr, "agent log": a.Log()} {
		if strings.Contains(text, wrong) {
			t.Errorf("%s contains the secret", where)
		}
	}

	// Clients keep asking; nobody retries against the OAuth server.
	after := p.TokenRequests()["client_credentials"]
	for range 10 {
		if r := run(t, e, "", "token", "svc"); r.code == 0 {
			t.Fatalf("token with a refused secret: %s", r)
		}
	}
	time.Sleep(3 * time.Second) // a retry loop would show here
	if got := p.TokenRequests()["client_credentials"]; got != after {
		t.Errorf("%d token requests after invalid_client, want none", got-after)
	}

	// Storing the right secret brings the profile back.
	addClientCredentials(t, e, "svc", id, secret, p)
	tok := strings.TrimSpace(runOK(t, e, "", "token", "svc").stdout)
	if err := p.CheckAccessToken(tok); err != nil {
		t.Fatalf("after storing the right secret: %v", err)
	}
	if prof, err := api.Profile(context.Background(), "svc"); err != nil || prof.State != ipc.StateValid || prof.LastError != "" {
		t.Errorf("profile after storing the right secret: %+v, %v", prof, err)
	}
}

// --- SigV4 ---

// sigV4Verifier is a server that answers 200 only to requests carrying a valid AWS
// Signature Version 4 for one key. It checks with aws-sdk-go v1's signer, a different code
// base from the aws-sdk-go-v2 signer inside the agent: it re-signs the request it received
// (its signed headers, its X-Amz-Date, its body) and compares the signatures.
type sigV4Verifier struct {
	*httptest.Server
	keyID, secret, region, service string
}

func newSigV4Verifier(t *testing.T, keyID, secret, region, service string) *sigV4Verifier {
	v := &sigV4Verifier{keyID: keyID, secret: secret, region: region, service: service}
	v.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := v.verify(r, body); err != nil {
			http.Error(w, "signature refused: "+err.Error(), http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "signature ok: %s %s, %d bytes", r.Method, r.URL.RequestURI(), len(body))
	}))
	t.Cleanup(v.Close)
	return v
}

// authFields splits "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…".
func authFields(auth string) (map[string]string, error) {
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return nil, fmt.Errorf("authorization %q is not AWS4-HMAC-SHA256", auth)
	}
	f := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("authorization %q: bad part %q", auth, part)
		}
		f[k] = val
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if f[k] == "" {
			return nil, fmt.Errorf("authorization %q has no %s", auth, k)
		}
	}
	return f, nil
}

func (v *sigV4Verifier) verify(r *http.Request, body []byte) error {
	got, err := authFields(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	// Credential = <key id>/<yyyymmdd>/<region>/<service>/aws4_request
	cred := strings.Split(got["Credential"], "/")
	if len(cred) < 5 {
		return fmt.Errorf("credential %q", got["Credential"])
	}
	scope := cred[len(cred)-4:]
	if keyID := strings.Join(cred[:len(cred)-4], "/"); keyID != v.keyID {
		return fmt.Errorf("unknown key id %q", keyID)
	}
	if scope[1] != v.region || scope[2] != v.service || scope[3] != "aws4_request" {
		return fmt.Errorf("credential scope %q, want region %s, service %s", strings.Join(scope, "/"), v.region, v.service)
	}
	date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("X-Amz-Date: %v", err)
	}
	if scope[0] != date.Format("20060102") {
		return fmt.Errorf("credential date %s does not match X-Amz-Date %s", scope[0], r.Header.Get("X-Amz-Date"))
	}
	if skew := time.Since(date); skew > 5*time.Minute || skew < -5*time.Minute {
		return fmt.Errorf("X-Amz-Date %s is %s off", r.Header.Get("X-Amz-Date"), skew)
	}
	sum := sha256.Sum256(body)
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != hex.EncodeToString(sum[:]) {
		return errors.New("X-Amz-Content-Sha256 does not match the body")
	}
	signed := strings.Split(got["SignedHeaders"], ";")
	if !slices.Contains(signed, "host") || !slices.Contains(signed, "x-amz-date") {
		return fmt.Errorf("signed headers %q must include host and x-amz-date", got["SignedHeaders"])
	}

	// The request as received, with only the headers the client says it signed.
	req, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return err
	}
	req.Host = r.Host
	for _, h := range signed {
		if h == "host" {
			continue
		}
		vals := r.Header.Values(h)
		if len(vals) == 0 {
			return fmt.Errorf("signed header %s is not in the request", h)
		}
		for _, val := range vals {
			req.Header.Add(h, val)
		}
	}
	signer := v1signer.NewSigner(credentials.NewStaticCredentials(v.keyID, v.secret, ""))
	if _, err := signer.Sign(req, bytes.NewReader(body), v.service, v.region, date); err != nil {
		return fmt.Errorf("re-sign: %v", err)
	}
	want, err := authFields(req.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if want["SignedHeaders"] != got["SignedHeaders"] || want["Credential"] != got["Credential"] {
		return fmt.Errorf("re-signed as %q, got %q", req.Header.Get("Authorization"), r.Header.Get("Authorization"))
	}
	if want["Signature"] != got["Signature"] {
		return errors.New("signature mismatch")
	}
	return nil
}

// curlSigned sends body to url with curl, with the headers (one "Name: value" per line) on
// stdin, and returns the status and the answer.
func curlSigned(t *testing.T, e *env, headers, method, url, bodyFile string) (int, string) {
	t.Helper()
	args := []string{"-sS", "-X", method, "-H", "@-", "-w", "\n%{http_code}", url}
	if bodyFile != "" {
		args = append(args, "--data-binary", "@"+bodyFile)
	}
	r := runIn(t, e.environ(), e.dir, headers, "curl", args...)
	if r.code != 0 {
		t.Fatalf("curl %s: %s", url, r)
	}
	answer, code, _ := cutLast(r.stdout, "\n")
	status, err := strconv.Atoi(code)
	if err != nil {
		t.Fatalf("curl %s: no status in %q", url, r.stdout)
	}
	return status, answer
}

// TestSigV4AcceptedByIndependentVerifier: headers signed inside the agent (`authagent sign`)
// make a request that an independent SigV4 verifier accepts, and the same headers on a
// tampered body are refused.
func TestSigV4AcceptedByIndependentVerifier(t *testing.T) {
	t.Parallel()
	needTools(t, "curl")
	const keyID, region, service = "AKIDEXAMPLE", "us-east-1", "api"
	secret := "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY/" + canary(t)
	v := newSigV4Verifier(t, keyID, secret, region, service)
	e := newEnv(t, startSession(t))
	a := startAgent(t, e)

	spec, err := json.Marshal(map[string]any{
		"provider": "apikey", "mode": "sigv4", "key_id": keyID, "region": region, "service": service,
		"hosts": []string{"127.0.0.1"}, "secret": secret,
	})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := apiDo(t, e, http.MethodPut, "/v1/profiles/dci", bytes.NewReader(spec)); status/100 != 2 {
		t.Fatalf("PUT /v1/profiles/dci: %d %s", status, body)
	}

	bodyFile := filepath.Join(e.dir, "job.json")
	if err := os.WriteFile(bodyFile, []byte(`{"name":"build","topic":"RHEL-9","components":["kernel"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	target := v.URL + "/api/v1/jobs/schedule?b=2&a=x%20y"
	sign := runOK(t, e, "", "sign", "dci", "--method", "POST", "--url", target, "--body-file", bodyFile,
		"--header", "Content-Type: application/json")
	t.Logf("authagent sign:\n%s", sign.stdout)
	if !strings.Contains(sign.stdout, "Authorization: AWS4-HMAC-SHA256 Credential="+keyID+"/") || !strings.Contains(sign.stdout, "X-Amz-Date: ") {
		t.Errorf("sign output lacks the SigV4 headers:\n%s", sign.stdout)
	}
	headers := sign.stdout + "Content-Type: application/json\n"

	status, answer := curlSigned(t, e, headers, "POST", target, bodyFile)
	if status != http.StatusOK {
		t.Fatalf("the verifier refused the signed request: %d %s", status, answer)
	}
	if f, err := authFields(headerLine(sign.stdout, "Authorization")); err != nil || !slices.Contains(strings.Split(f["SignedHeaders"], ";"), "content-type") {
		t.Errorf("Content-Type given with --header is not signed: %v %v", f, err)
	}

	// The same headers on another body: refused.
	tampered := filepath.Join(e.dir, "tampered.json")
	if err := os.WriteFile(tampered, []byte(`{"name":"build","topic":"RHEL-9","components":["kernel","backdoor"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if status, answer := curlSigned(t, e, headers, "POST", target, tampered); status != http.StatusForbidden {
		t.Errorf("tampered body: %d %s, want 403", status, answer)
	}
	// And on another path.
	if status, answer := curlSigned(t, e, headers, "POST", v.URL+"/api/v1/jobs/delete?b=2&a=x%20y", bodyFile); status != http.StatusForbidden {
		t.Errorf("other path: %d %s, want 403", status, answer)
	}

	// A GET without a body, signed without extra headers, is accepted as well.
	get := runOK(t, e, "", "sign", "dci", "--method", "GET", "--url", v.URL+"/api/v1/identity").stdout
	if status, answer := curlSigned(t, e, get, "GET", v.URL+"/api/v1/identity", ""); status != http.StatusOK {
		t.Errorf("signed GET: %d %s", status, answer)
	}

	// The secret signs; it is never handed out.
	for where, text := range map[string]string{"sign output": sign.stdout + sign.stderr + get, "agent log": a.Log(), "config": readConfig(t, e)} {
		if strings.Contains(text, secret) {
			t.Errorf("%s contains the secret", where)
		}
	}
	// Nor does the profile sign for hosts it does not have.
	if r := run(t, e, "", "sign", "dci", "--method", "GET", "--url", "https://api.example.com/"); r.code == 0 {
		t.Errorf("sign for a host outside the profile's hosts: %s", r)
	}
}

// headerLine returns the value of the first "Name: value" line for name.
func headerLine(lines, name string) string {
	for line := range strings.Lines(lines) {
		if k, val, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(val)
		}
	}
	return ""
}
