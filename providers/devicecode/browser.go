package devicecode

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/loopback"
)

// defaultBrowserTimeout is how long a browser login waits for the redirect when the
// profile sets no login_timeout: time to sign in, with a second factor, not to wander off.
const defaultBrowserTimeout = 5 * time.Minute

// chooseFlow picks a login's flow: the caller's (authagent login --browser/--device) over
// the profile's login key. auth and device say why the server's endpoint of each flow
// cannot be used: nil when it can, errNoEndpoint when there is none. "auto" takes the
// browser when the caller can open one and the authorization endpoint can be used, else
// the device flow when it can, else the browser (its URL can be opened by hand). A flow
// that cannot run is an error that says why and names the other one.
func chooseFlow(name, requested, configured string, display bool, auth, device error) (string, error) {
	flow := requested
	if flow == "" {
		flow = configured
	}
	switch flow {
	case providers.FlowBrowser:
		switch {
		case errors.Is(auth, errNoEndpoint):
			return "", fmt.Errorf("the identity provider offers no browser login (no authorization endpoint); log in with the device flow: `authagent login %s --device`", name)
		case auth != nil:
			return "", fmt.Errorf("no browser login: %w; log in with the device flow: `authagent login %s --device`", auth, name)
		}
		return flow, nil
	case providers.FlowDevice:
		switch {
		case errors.Is(device, errNoEndpoint):
			return "", fmt.Errorf("the identity provider offers no device login (no device authorization endpoint); log in with the browser: `authagent login %s --browser`", name)
		case device != nil:
			return "", fmt.Errorf("no device login: %w; log in with the browser: `authagent login %s --browser`", device, name)
		}
		return flow, nil
	case loginAuto:
		switch {
		case display && auth == nil:
			return providers.FlowBrowser, nil
		case device == nil:
			return providers.FlowDevice, nil
		case auth == nil:
			return providers.FlowBrowser, nil
		case errors.Is(auth, errNoEndpoint) && errors.Is(device, errNoEndpoint):
			return "", errors.New("the identity provider offers neither a browser login (authorization endpoint) nor a device login (device authorization endpoint)")
		}
		var why []string
		for _, err := range []error{auth, device} {
			if !errors.Is(err, errNoEndpoint) {
				why = append(why, err.Error())
			}
		}
		return "", fmt.Errorf("no login of the identity provider can be used: %s", strings.Join(why, "; "))
	}
	return "", fmt.Errorf("unknown login flow %q: want %q or %q", flow, providers.FlowBrowser, providers.FlowDevice)
}

// loginBrowser runs the authorization code flow with PKCE (RFC 7636) through a loopback
// redirect (RFC 8252): it listens on 127.0.0.1, shows the listener's start page for the
// caller to open (it sends the browser on to the authorization request, so that the
// request's state and challenge appear on no command line), takes the one redirect that
// carries the login's state and the start page's cookie, exchanges its code and verifier,
// and tells the browser how it went. The listener closes when the login ends, however it
// ends.
func (p *Provider) loginBrowser(ctx context.Context, c *oauth2.Config, show func(providers.Challenge)) (*providers.Credential, error) {
	timeout := p.cfg.LoginTimeout.D()
	if timeout <= 0 {
		timeout = defaultBrowserTimeout
	}
	wait, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	state := rand.Text()
	l, err := loopback.Listen(loopback.Options{
		Ports: p.cfg.RedirectPort,
		Path:  p.cfg.RedirectPath,
		State: state,
		Name:  "profile " + p.name,
	})
	if err != nil {
		// The caller can do something about it (free the port, choose the other flow); a
		// retry of the same request cannot.
		return nil, providers.Mark(providers.ErrInvalidRequest, fmt.Errorf("start the browser login: %w; set redirect_port to ports registered for client %s that are free, or log in with the device flow: `authagent login %s --device`", err, p.cfg.ClientID, p.name))
	}
	defer l.Close()
	c.RedirectURL = l.RedirectURI()
	verifier := oauth2.GenerateVerifier()
	opts := append(p.extraParams(), oauth2.S256ChallengeOption(verifier))
	var nonce string
	if p.openID() {
		nonce = rand.Text()
		opts = append(opts, oidc.Nonce(nonce))
	}
	start := l.Start(c.AuthCodeURL(state, opts...))
	show(providers.Challenge{
		Flow:    providers.FlowBrowser,
		AuthURL: start,
		// For clients that know only the device flow's fields: opening this page is
		// what the user has to do.
		VerificationURI: start,
		ExpiresAt:       p.now().Add(timeout).UTC(),
	})
	red, err := l.Wait(wait)
	switch {
	case errors.Is(err, loopback.ErrStartReused):
		return nil, p.startReused()
	case err != nil && errors.Is(ctx.Err(), context.Canceled):
		return nil, errors.New("login cancelled")
	case err != nil:
		return nil, fmt.Errorf("no redirect came back from the browser within %s, so the login ended; run `authagent login %s` again, or `authagent login %s --device` to log in with a code", timeout, p.name, p.name)
	}
	cred, err := p.redirected(ctx, c, red, verifier, nonce, l.Reused)
	red.Finish(err)
	return cred, err
}

// startReused is the error of a login whose start page a second browser opened.
func (p *Provider) startReused() error {
	return fmt.Errorf("%w; run `authagent login %s` again and open its page only in your browser (if you did not open it twice, another program on this machine may be watching for logins)", loopback.ErrStartReused, p.name)
}

// redirected finishes a browser login with the redirect that came back: the
// authorization server's error, or the code to exchange. reused reports whether a second
// browser opened the start page meanwhile; then the grant is not taken.
func (p *Provider) redirected(ctx context.Context, c *oauth2.Config, red *loopback.Redirect, verifier, nonce string, reused func() bool) (*providers.Credential, error) {
	if red.Error != "" {
		return nil, p.explainRedirect(red)
	}
	// RFC 9207 §2.4: a server that names itself in the redirect must be the profile's,
	// compared as the exact string, so that a code from another server (a mix-up) is not
	// sent to this one's token endpoint.
	if red.Issuer != "" && p.cfg.Issuer != "" && red.Issuer != p.cfg.Issuer {
		return nil, fmt.Errorf("the redirect comes from issuer %q, not from the profile's %q, so its code is not used (RFC 9207)", clip(red.Issuer), p.cfg.Issuer)
	}
	sent := p.now()
	tok, err := c.Exchange(p.ctx(ctx), red.Code, append(p.extraParams(), oauth2.VerifierOption(verifier))...)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, errors.New("login cancelled")
		}
		return nil, p.explain("exchange the authorization code", err, c.ClientSecret, red.Code, verifier)
	}
	if reused() {
		return nil, p.startReused()
	}
	return p.loggedIn(ctx, tok, sent, nonce)
}

// explainRedirect words the authorization server's error in a redirect (RFC 6749
// §4.1.2.1). Its description comes from the redirect's URL, so it is clipped and cleaned.
func (p *Provider) explainRedirect(red *loopback.Redirect) error {
	desc := ""
	if d := clip(red.ErrorDescription); d != "" {
		desc = ": " + d
	}
	switch code := clip(red.Error); code {
	case "access_denied":
		return fmt.Errorf("the login was denied at the identity provider%s; run `authagent login %s` to try again", desc, p.name)
	case "invalid_scope":
		return fmt.Errorf("the identity provider refused the scopes %q (invalid_scope%s); fix scopes in the profile", p.cfg.Scopes, desc)
	case "unauthorized_client", "unsupported_response_type", "invalid_request":
		return fmt.Errorf("the identity provider refused the browser login of client %q (%s%s): allow the authorization code flow with PKCE and the loopback redirect URI http://127.0.0.1%s (any port) for the client, or log in with the device flow: `authagent login %s --device`",
			p.cfg.ClientID, code, desc, p.redirectPath(), p.name)
	default:
		return fmt.Errorf("the identity provider ended the browser login with %s%s; run `authagent login %s` to try again", code, desc, p.name)
	}
}

func (p *Provider) redirectPath() string {
	if p.cfg.RedirectPath == "" {
		return "/"
	}
	return p.cfg.RedirectPath
}

// clip makes text from a redirect fit for a message: no control characters, at most 200
// bytes.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
