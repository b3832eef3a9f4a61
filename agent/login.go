package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/authagent/authagent/agent/audit"
	"github.com/authagent/authagent/providers"
)

// loginTimeout bounds a login whose IdP gave no code expiry.
const loginTimeout = 15 * time.Minute

// Login starts an interactive login for a profile and returns the challenge the user must
// complete as soon as the IdP issued it: a device login's code, or the page a browser
// login opens. The login goes on in the agent; its progress is published as events and
// shown in ProfileInfo.Login. opts (at most one) is the caller's choice of flow and whether
// it can open a browser; without it, the profile's login key decides as for a caller
// without a display. Errors wrap ErrBadRequest for a profile without a login or a flow it
// cannot run, ErrLoginPending while another login waits, ErrProvider when the identity
// provider refused to start one. A profile with confirm set starts one only when the user
// allows it (OpChange, ActionLogin: a login replaces its tokens); else ErrDenied.
func (a *Agent) Login(ctx context.Context, name string, opts ...providers.LoginOptions) (_ *providers.Challenge, err error) {
	defer func() { a.audit(ctx, audit.OpLogin, name, nil, err) }()
	p, err := a.lookup(name)
	if err != nil {
		return nil, err
	}
	if _, ok := p.prov.(providers.Loginer); !ok {
		return nil, providers.Mark(ErrBadRequest, fmt.Errorf("profile %s (%s) has no interactive login", p.name, p.cfg.Provider))
	}
	if err := a.confirmAbout(ctx, p, ConfirmRequest{Operation: OpChange, Action: ActionLogin}); err != nil {
		return nil, err
	}
	var o providers.LoginOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	return p.startLogin(ctx, o)
}

// CancelLogin stops a login in progress, for the caller ctx carries (the audit log names
// it; ctx carries only values). Errors wrap ErrUnknownProfile, or ErrBadRequest when no
// login is in progress.
func (a *Agent) CancelLogin(ctx context.Context, name string) (err error) {
	defer func() { a.audit(ctx, audit.OpLoginCancel, name, nil, err) }()
	p, err := a.lookup(name)
	if err != nil {
		return err
	}
	p.mu.Lock()
	cancel := p.loginCancel
	p.mu.Unlock()
	if cancel == nil {
		return providers.Mark(ErrBadRequest, fmt.Errorf("profile %s has no login in progress", name))
	}
	cancel()
	return nil
}

// Logout forgets a profile's tokens and revokes its grant where the provider can. A
// profile with confirm set is logged out only when the user allows it (OpChange,
// ActionLogout), asked before anything is stopped; else ErrDenied.
func (a *Agent) Logout(ctx context.Context, name string) (err error) {
	defer func() { a.audit(ctx, audit.OpLogout, name, nil, err) }()
	p, err := a.lookup(name)
	if err != nil {
		return err
	}
	lo, ok := p.prov.(providers.Logouter)
	if !ok {
		return providers.Mark(ErrBadRequest, fmt.Errorf("profile %s (%s) has no login to end; `authagent remove %s` forgets it and its secret", name, p.cfg.Provider, name))
	}
	if err := a.confirmAbout(ctx, p, ConfirmRequest{Operation: OpChange, Action: ActionLogout}); err != nil {
		return err
	}
	// Stop everything that could bring the session back: a login in progress (wait for it,
	// it may be saving a refresh token) and a refresh in flight.
	p.mu.Lock()
	if p.loginCancel != nil {
		p.loginCancel()
	}
	loginDone := p.loginDone
	p.loginGen++
	p.needsLogin = true
	p.cred = nil
	p.retryAt = time.Time{}
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	f := p.flight
	p.mu.Unlock()
	wait, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	for _, done := range []<-chan struct{}{loginDone, flightDone(f)} {
		if done != nil {
			select {
			case <-done:
			case <-wait.Done():
			}
		}
	}
	gl := a.grantLock(name)
	gl.Lock()
	err = lo.Logout(wait)
	gl.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = "logged out; run `authagent login " + name + "` to log in again"
	p.notifyLocked(true)
	a.log.Info("logged out", "profile", name, "error", err)
	if err != nil {
		return providers.Mark(ErrProvider, fmt.Errorf("profile %s: %w", name, err))
	}
	return nil
}

func (p *profile) startLogin(ctx context.Context, opts providers.LoginOptions) (*providers.Challenge, error) {
	l, ok := p.prov.(providers.Loginer)
	if !ok {
		return nil, providers.Mark(ErrBadRequest, fmt.Errorf("profile %s (%s) has no interactive login", p.name, p.cfg.Provider))
	}
	login := func(ctx context.Context, show func(providers.Challenge)) (*providers.Credential, error) {
		return l.Login(ctx, show)
	}
	if fl, ok := l.(providers.FlowLoginer); ok {
		login = func(ctx context.Context, show func(providers.Challenge)) (*providers.Credential, error) {
			return fl.LoginWith(ctx, opts, show)
		}
	} else if opts.Flow != "" && opts.Flow != providers.FlowDevice {
		return nil, providers.Mark(ErrBadRequest, fmt.Errorf("profile %s (%s) logs in with the device flow only", p.name, p.cfg.Provider))
	}
	p.mu.Lock()
	for p.loginCancel == nil && p.loginDone != nil && !isClosed(p.loginDone) {
		// The last login has ended but its goroutine has yet to record how: let it, so
		// the audit log shows that login's end before this one's start.
		done := p.loginDone
		p.mu.Unlock()
		<-done
		p.mu.Lock()
	}
	if p.loginCancel != nil {
		var where string
		switch {
		case p.login != nil && p.login.Flow == providers.FlowBrowser:
			where = " in the browser"
		case p.login != nil:
			where = fmt.Sprintf(" (code %s at %s)", p.login.UserCode, p.login.VerificationURI)
		}
		p.mu.Unlock()
		return nil, providers.Mark(ErrLoginPending, fmt.Errorf("profile %s: a login is already waiting for the user%s", p.name, where))
	}
	lctx, cancel := context.WithTimeout(p.a.ctx, loginTimeout)
	lctx, meta := providers.WithResponseMeta(lctx)
	deadline := p.a.clock.Now().Add(loginTimeout)
	p.loginCancel = cancel
	gen := p.loginGen
	loginDone := make(chan struct{})
	p.loginDone = loginDone
	f := p.flight
	p.mu.Unlock()

	shown := make(chan providers.Challenge, 1)
	ended := make(chan error, 1)
	go func() {
		defer close(loginDone)
		defer cancel()
		if f != nil {
			<-f.done // a refresh in flight saves its token before the login replaces it
		}
		if err := p.a.awaitCall(lctx, p.name, p.stopping); err != nil {
			err = errors.New("login cancelled")
			p.a.audit(ctx, audit.OpLoginDone, p.name, nil, p.finishLogin(gen, nil, err, meta))
			ended <- err
			return
		}
		gl := p.a.grantLock(p.name)
		gl.Lock()
		cred, err := login(lctx, func(c providers.Challenge) {
			if c.ExpiresAt.IsZero() || c.ExpiresAt.After(deadline) {
				c.ExpiresAt = deadline // the agent gives up on the login then
			}
			if c.Flow == "" {
				c.Flow = providers.FlowDevice
			}
			p.mu.Lock()
			p.login = &c
			p.notifyLocked(true)
			p.mu.Unlock()
			shown <- c
		})
		gl.Unlock()
		p.a.audit(ctx, audit.OpLoginDone, p.name, nil, p.finishLogin(gen, cred, err, meta))
		ended <- err
	}()
	select {
	case c := <-shown:
		return &c, nil
	case err := <-ended:
		if errors.Is(err, providers.ErrInvalidRequest) {
			return nil, providers.Mark(ErrBadRequest, fmt.Errorf("profile %s: %w", p.name, err))
		}
		return nil, providers.Mark(ErrProvider, fmt.Errorf("profile %s: %w", p.name, err))
	case <-ctx.Done():
		// The client left before the login showed anything: nobody will complete it. End
		// it quietly; what the profile said before (say, "run authagent login") stands.
		p.mu.Lock()
		if p.loginGen == gen {
			p.loginQuiet = true
		}
		p.mu.Unlock()
		cancel()
		return nil, ctx.Err()
	}
}

// finishLogin ends a login with its outcome and returns how it ended for the audit log:
// nil when the profile is logged in.
func (p *profile) finishLogin(gen int, cred *providers.Credential, err error, meta *providers.ResponseMeta) error {
	if err == nil {
		err = checkCredential(cred)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.login = nil
	p.loginCancel = nil
	if p.loginGen != gen {
		// A logout came in meanwhile; it waits for us and then revokes what we stored.
		p.notifyLocked(true)
		return context.Canceled
	}
	now := p.a.clock.Now()
	quiet := p.loginQuiet
	p.loginQuiet = false
	if err != nil {
		if quiet {
			p.a.log.Info("login abandoned by its client before it showed anything", "profile", p.name)
		} else {
			p.lastErr = "login failed: " + err.Error()
			p.a.log.Warn("login failed", "profile", p.name, "error", err)
		}
		p.notifyLocked(true)
		if quiet || errors.Is(err, context.Canceled) {
			return context.Canceled // its client left, or `authagent login --cancel`
		}
		return providers.Mark(ErrProvider, err)
	}
	p.loginGen++
	if aerr := providers.CheckArrival(cred.ExpiresAt, now, meta); aerr != nil {
		// The grant is new and stored; only its first access token is unusable. Refresh
		// it like any failed fetch: with backoff.
		p.needsLogin = false
		p.a.log.Warn("logged in, but the access token is unusable", "profile", p.name, "error", aerr)
		p.failedLocked(now, fmt.Errorf("logged in (the new grant is stored), but %w", aerr), meta)
		p.notifyLocked(true)
		return nil
	}
	p.a.log.Info("logged in", "profile", p.name)
	p.succeededLocked(now, cred)
	p.asked = 1 // someone logged in to use it: the profile is not idle
	p.notifyLocked(true)
	return nil
}

// flightDone is f's done channel, nil when there is no fetch in flight.
func flightDone(f *flight) <-chan struct{} {
	if f == nil {
		return nil
	}
	return f.done
}

// errLoginSuperseded marks a fetch whose result a login or logout made stale.
var errLoginSuperseded = errors.New("superseded by a login or logout")

// PushToken hands a token to a profile whose provider accepts pushed tokens
// (externaljwt without command or file). A zero expiresAt means: from the token itself.
// ctx bounds only the wait for the provider's call budget; checking and storing the token
// run on a context of their own (up to changeTimeout). A profile with confirm set takes
// the token only when the user allows it (OpChange, ActionPush); else ErrDenied.
func (a *Agent) PushToken(ctx context.Context, name, token string, expiresAt time.Time) (err error) {
	defer func() { a.audit(ctx, audit.OpPush, name, nil, err) }()
	p, err := a.lookup(name)
	if err != nil {
		return err
	}
	pu, ok := p.prov.(providers.Pusher)
	if !ok {
		return providers.Mark(ErrBadRequest, fmt.Errorf("profile %s (%s) does not take pushed tokens; only externaljwt profiles without command or file do", name, p.cfg.Provider))
	}
	if providers.HasControl(token) {
		return providers.Mark(ErrBadRequest, fmt.Errorf("profile %s: the token contains a line break or another control character", name))
	}
	if err := a.confirmAbout(ctx, p, ConfirmRequest{Operation: OpChange, Action: ActionPush}); err != nil {
		return err
	}
	// Checking a pushed token may fetch the issuer's keys (jwks_url): a push loop must not
	// turn into a storm on that endpoint. Without jwks_url a push stays local.
	if l, ok := p.prov.(providers.Local); !ok || !l.Local() {
		if err := a.awaitCall(ctx, name, p.stopping); err != nil {
			return providers.Mark(ErrUnavailable, fmt.Errorf("profile %s: %w", name, err))
		}
	}
	// From here the push stores the token: it finishes whether or not the caller waits.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), changeTimeout)
	defer cancel()
	cred, err := pu.Push(wctx, token, expiresAt)
	if err == nil {
		err = checkCredential(cred)
	}
	if err == nil {
		err = providers.CheckArrival(cred.ExpiresAt, a.clock.Now(), nil)
	}
	if errors.Is(err, providers.ErrSecretStore) {
		return providers.Mark(ErrUnavailable, fmt.Errorf("profile %s: %w", name, err)) // the store, not the token
	}
	if err != nil {
		return providers.Mark(ErrBadRequest, fmt.Errorf("profile %s: %w", name, err))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loginGen++ // a fetch in flight returns the older token
	p.succeededLocked(a.clock.Now(), cred)
	p.notifyLocked(true)
	a.log.Info("token pushed", "profile", name, "expires_at", cred.ExpiresAt.UTC())
	return nil
}

// Sign signs a request for a profile whose provider signs instead of handing out its
// secret (apikey sigv4). The URL must be one the profile may send to.
func (a *Agent) Sign(ctx context.Context, name string, req providers.SignRequest) (_ map[string]string, err error) {
	defer func() { a.audit(ctx, audit.OpSign, name, parsedURL(req.URL), err) }()
	p, err := a.lookup(name)
	if err != nil {
		return nil, err
	}
	s, ok := p.prov.(providers.Signer)
	if !ok {
		return nil, providers.Mark(ErrBadRequest, fmt.Errorf("profile %s (%s) does not sign requests; only apikey profiles with mode = \"sigv4\" do", name, p.cfg.Provider))
	}
	u, err := url.Parse(req.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, providers.Mark(ErrBadRequest, fmt.Errorf("url must be an absolute URL like https://api.example.com/path, got %q", req.URL))
	}
	if err := p.allows(u); err != nil {
		return nil, err
	}
	if err := a.confirm(ctx, p, OpSign, u.Host); err != nil {
		return nil, err
	}
	headers, err := s.Sign(ctx, req)
	if err != nil {
		switch {
		case errors.Is(err, providers.ErrNeedsLogin):
			return nil, providers.Mark(ErrNeedsLogin, fmt.Errorf("profile %s: %w", name, err))
		case errors.Is(err, providers.ErrInvalidRequest):
			return nil, providers.Mark(ErrBadRequest, fmt.Errorf("profile %s: %w", name, err))
		}
		return nil, providers.Mark(ErrProvider, fmt.Errorf("profile %s: %w", name, err))
	}
	return headers, nil
}
