package idp_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authagent/authagent/tests/idp"
)

// exchange posts an RFC 8693 token exchange request as the service client (HTTP Basic)
// and returns the status and the decoded answer.
func exchange(t *testing.T, p *idp.IdP, form url.Values) (int, map[string]any) {
	t.Helper()
	id, secret := p.ServiceClient()
	form.Set("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange")
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, p.TokenEndpoint(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token exchange answer: %v", err)
	}
	return resp.StatusCode, body
}

// TestTokenExchange: the op package trades a user's live access token for a new access
// token for the service client, with the audience asked for, which userinfo accepts as the
// user's; an expired subject, a forged one and a client other than the service client are
// refused as RFC 8693 §2.2.2 says.
func TestTokenExchange(t *testing.T) {
	t.Parallel()
	p := idp.Start(t, idp.Options{AccessTokenLifetime: 3 * time.Second, ExchangedTokenLifetime: time.Minute})
	user := login(t, p)
	const accessType = "urn:ietf:params:oauth:token-type:access_token"

	status, got := exchange(t, p, url.Values{
		"subject_token":      {user.AccessToken},
		"subject_token_type": {accessType},
		"audience":           {"https://api.example.com"},
		"scope":              {"openid api"},
	})
	if status != http.StatusOK {
		t.Fatalf("exchange: %d %v", status, got)
	}
	tok, _ := got["access_token"].(string)
	if tok == "" || tok == user.AccessToken || got["issued_token_type"] != accessType || !strings.EqualFold(got["token_type"].(string), "bearer") {
		t.Fatalf("exchange answer %v: want a new bearer access token", got)
	}
	if exp, _ := got["expires_in"].(float64); exp < 55 || exp > 60 {
		t.Errorf("expires_in = %v, want ExchangedTokenLifetime (60)", got["expires_in"])
	}
	sub, err := p.AccessTokenSubject(tok)
	if err != nil || sub != idp.Username {
		t.Errorf("userinfo with the exchanged token: %q, %v; want the user %q", sub, err, idp.Username)
	}
	ex := p.TokenExchanges()
	if len(ex) != 1 || ex[0].Subject != idp.Username || !slices.Equal(ex[0].Audience, []string{"https://api.example.com"}) ||
		ex[0].RequestedTokenType != accessType || ex[0].Expires.IsZero() {
		t.Errorf("TokenExchanges() = %+v", ex)
	}
	if n := len(p.ServiceTokensIssued()); n != 0 {
		t.Errorf("an exchange counted as %d client credentials tokens", n)
	}

	for name, tt := range map[string]struct {
		form   url.Values
		status int
		code   string
		client string
	}{
		"forged subject": {form: url.Values{"subject_token": {"not-a-token"}, "subject_token_type": {accessType}}, status: 400, code: "invalid_request"},
		"no subject":     {form: url.Values{"subject_token_type": {accessType}}, status: 400, code: "invalid_request"},
		"jwt requested":  {form: url.Values{"subject_token": {user.AccessToken}, "subject_token_type": {accessType}, "requested_token_type": {"urn:ietf:params:oauth:token-type:jwt"}}, status: 400, code: "invalid_request"},
	} {
		status, got := exchange(t, p, tt.form)
		if status != tt.status || got["error"] != tt.code {
			t.Errorf("%s: %d %v, want %d %s", name, status, got, tt.status, tt.code)
		}
	}

	// Once the subject expired, it is refused.
	time.Sleep(3*time.Second + 700*time.Millisecond)
	status, got = exchange(t, p, url.Values{"subject_token": {user.AccessToken}, "subject_token_type": {accessType}})
	if status != http.StatusBadRequest || got["error"] != "invalid_request" || !strings.Contains(got["error_description"].(string), "expired") {
		t.Errorf("exchange of an expired subject: %d %v, want 400 invalid_request saying it expired", status, got)
	}
	// The exchanged token lives on its own lifetime.
	if err := p.CheckAccessToken(tok); err != nil {
		t.Errorf("the exchanged token died with its subject: %v", err)
	}
}
