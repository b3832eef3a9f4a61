package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/providers"
)

// flowProvider is an oidc profile's provider as the socket API sees it: two login flows,
// ID tokens. It records the options of each login.
type flowProvider struct {
	mu   sync.Mutex
	opts []providers.LoginOptions
}

func (p *flowProvider) Fetch(context.Context) (*providers.Credential, error) {
	c := providers.TokenCredential("", "access-tok", time.Now().Add(time.Hour))
	c.IDToken, c.IDTokenExpiresAt = "id-tok", time.Now().Add(30*time.Minute)
	return c, nil
}

func (p *flowProvider) Login(ctx context.Context, show func(providers.Challenge)) (*providers.Credential, error) {
	return p.LoginWith(ctx, providers.LoginOptions{}, show)
}

func (p *flowProvider) LoginWith(ctx context.Context, o providers.LoginOptions, show func(providers.Challenge)) (*providers.Credential, error) {
	p.mu.Lock()
	p.opts = append(p.opts, o)
	p.mu.Unlock()
	if o.Flow == providers.FlowBrowser || o.Display {
		show(providers.Challenge{Flow: providers.FlowBrowser, AuthURL: "https://idp.test/authorize?x=1", VerificationURI: "https://idp.test/authorize?x=1", ExpiresAt: time.Now().Add(time.Minute)})
	} else {
		show(providers.Challenge{Flow: providers.FlowDevice, UserCode: "WXYZ", VerificationURI: "https://idp.test/device", ExpiresAt: time.Now().Add(time.Minute)})
	}
	<-ctx.Done()
	return nil, errors.New("login cancelled")
}

func (p *flowProvider) Logout(context.Context) error { return nil }
func (p *flowProvider) IDTokens() error              { return nil }

func (p *flowProvider) last() providers.LoginOptions {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opts[len(p.opts)-1]
}

func startFlowServer(t *testing.T) (*ipc.Client, *flowProvider, string) {
	t.Helper()
	fp := &flowProvider{}
	cfg := &agent.Config{Path: filepath.Join(t.TempDir(), "config.toml"), Profiles: map[string]*providers.ProfileConfig{
		"work": {Provider: "oidc", Hosts: []string{"kube.example.com"}, KubeToken: "id_token"},
		"hub":  {Provider: "static"},
	}}
	a, err := agent.New(agent.Options{Config: cfg, Store: agent.NewMemoryStore(), Providers: map[string]providers.Factory{
		"oidc": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) { return fp, nil },
		"static": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) {
			return staticProvider{}, nil
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "run", "agent.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Server{Agent: a}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		a.Close()
	})
	return &ipc.Client{Socket: sock}, fp, sock
}

type staticProvider struct{}

func (staticProvider) Fetch(context.Context) (*providers.Credential, error) {
	return providers.TokenCredential("", "static", time.Time{}), nil
}

// POST …/login takes an optional LoginRequest: the flow and whether the caller can open a
// browser reach the provider; the challenge says which flow runs and, for the browser,
// what to open.
func TestLoginRequest(t *testing.T) {
	c, fp, sock := startFlowServer(t)
	ctx := context.Background()

	ch, err := c.Login(ctx, "work")
	if err != nil {
		t.Fatal(err)
	}
	if got := fp.last(); got != (providers.LoginOptions{}) {
		t.Errorf("a login without a body reached the provider with %+v, want none", got)
	}
	if ch.Flow != ipc.FlowDevice || ch.UserCode != "WXYZ" || ch.AuthURL != "" {
		t.Errorf("device challenge %+v", ch)
	}
	if err := c.CancelLogin(ctx, "work"); err != nil {
		t.Fatal(err)
	}
	waitNoLogin(t, c)

	ch, err = c.Login(ctx, "work", ipc.Flow(ipc.FlowBrowser), ipc.Display(true))
	if err != nil {
		t.Fatal(err)
	}
	if got := fp.last(); got != (providers.LoginOptions{Flow: providers.FlowBrowser, Display: true}) {
		t.Errorf("provider got %+v", got)
	}
	if ch.Flow != ipc.FlowBrowser || ch.AuthURL != "https://idp.test/authorize?x=1" || ch.VerificationURI != ch.AuthURL || ch.UserCode != "" {
		t.Errorf("browser challenge %+v", ch)
	}
	p, err := c.Profile(ctx, "work")
	if err != nil || p.Login == nil || p.Login.Flow != ipc.FlowBrowser || p.Login.AuthURL != ch.AuthURL {
		t.Errorf("profile during the browser login: %+v, %v", p, err)
	}
	var ae *ipc.Error
	if _, err := c.Login(ctx, "work"); !errors.As(err, &ae) || ae.Code != ipc.CodeLoginPending || !strings.Contains(ae.Message, "in the browser") {
		t.Errorf("a second login: %v", err)
	}
	if err := c.CancelLogin(ctx, "work"); err != nil {
		t.Fatal(err)
	}
	waitNoLogin(t, c)

	for _, tc := range []struct{ body, want string }{
		{`{"flow":"keyboard"}`, `flow must be "browser" or "device"`},
		{`{"Flow":"browser"}`, `did you mean "flow"`},
		{`{"flow":"browser","flow":"device"}`, "given twice"},
		{`{"display":"yes"}`, "display"},
		{`[1]`, "JSON object"},
	} {
		status, body := rawMessage(t, sock, http.MethodPost, "/v1/profiles/work/login", tc.body)
		if status != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("login with %s: %d %s; want 400 saying %q", tc.body, status, body, tc.want)
		}
	}
	if p, _ := c.Profile(ctx, "work"); p.Login != nil {
		t.Errorf("a refused login request started a login: %+v", p.Login)
	}
}

// rawMessage sends a request over the socket and returns the status and, for an error,
// its message.
func rawMessage(t *testing.T, sock, method, path, body string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequest(method, "http://authagent"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb errorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	if eb.Error == nil {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, eb.Error.Message
}

func waitNoLogin(t *testing.T, c *ipc.Client) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := c.Profile(context.Background(), "work")
		if err == nil && p.Login == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the login did not end: %+v, %v", p, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// token=id_token serves the ID token by name and by URL; token= takes only the two names;
// a profile without ID tokens says so. The profile shows kube_token and the capability.
func TestIDTokenParameter(t *testing.T) {
	c, _, sock := startFlowServer(t)
	ctx := context.Background()
	for _, get := range []func() (*ipc.Credential, error){
		func() (*ipc.Credential, error) { return c.Credential(ctx, "work", ipc.IDToken()) },
		func() (*ipc.Credential, error) {
			return c.CredentialForURL(ctx, "https://kube.example.com/api", ipc.IDToken())
		},
	} {
		cred, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if cred.Token != "id-tok" || cred.TokenType != "Bearer" || cred.Headers["Authorization"] != "Bearer id-tok" || cred.ExpiresAt == nil || cred.Profile != "work" {
			t.Errorf("ID token credential %+v", cred)
		}
	}
	if cred, err := c.Credential(ctx, "work"); err != nil || cred.Token != "access-tok" {
		t.Errorf("the access token: %+v, %v", cred, err)
	}
	status, body := rawMessage(t, sock, http.MethodGet, "/v1/profiles/work/credential?token=refresh_token", "")
	if status != http.StatusBadRequest || !strings.Contains(body, `token must be "access_token", "id_token" or "kube"`) {
		t.Errorf("token=refresh_token: %d %s", status, body)
	}
	// token=kube: what kube_token names; work says id_token, hub says nothing.
	for _, tc := range []struct {
		get  func() (*ipc.Credential, error)
		want string
	}{
		{func() (*ipc.Credential, error) { return c.Credential(ctx, "work", ipc.KubeToken()) }, "id-tok"},
		{func() (*ipc.Credential, error) {
			return c.CredentialForURL(ctx, "https://kube.example.com/api", ipc.KubeToken())
		}, "id-tok"},
		{func() (*ipc.Credential, error) { return c.Credential(ctx, "hub", ipc.KubeToken()) }, "static"},
	} {
		if cred, err := tc.get(); err != nil || cred.Token != tc.want {
			t.Errorf("token=kube: %+v, %v; want %s", cred, err, tc.want)
		}
	}
	if _, err := c.Credential(ctx, "nope", ipc.KubeToken()); !ipc.IsCode(err, ipc.CodeUnknownProfile) {
		t.Errorf("token=kube of an unknown profile: %v", err)
	}
	var ae *ipc.Error
	if _, err := c.Credential(ctx, "hub", ipc.IDToken()); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Errorf("ID token of a profile without ID tokens: %v", err)
	}
	if _, err := c.Credential(ctx, "work", ipc.IDToken(), ipc.ForURL("https://evil.example/")); !errors.As(err, &ae) || ae.Code != ipc.CodeForbidden {
		t.Errorf("ID token for a host outside the profile's: %v", err)
	}
	p, err := c.Profile(ctx, "work")
	if err != nil || p.KubeToken != ipc.TokenID || !slices.Contains(p.Capabilities, "id_token") {
		t.Errorf("profile %+v, %v", p, err)
	}
	b, _ := json.Marshal(p)
	if strings.Contains(string(b), "id-tok") {
		t.Errorf("the profile shows the ID token: %s", b)
	}
}
