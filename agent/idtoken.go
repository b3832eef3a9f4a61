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

// A profile whose provider speaks OpenID Connect keeps the ID token that came with its
// access token (providers.Credential.IDToken, verified by the provider) and serves it on
// request. It is cached, refreshed and single-flighted with the access token: one refresh
// brings both. The rules beyond the access token's:
//
//   - For a profile with kube_token = "id_token", and for any profile during the lifetime
//     of an ID token somebody asked for, the proactive refresh is due by the earlier of the
//     two expiries, as long as refreshes bring new ID tokens. The idle floor holds for that
//     expiry as for the access token's: a short-lived ID token nobody asks for does not
//     keep the identity provider busy.
//   - An identity provider that sends no new ID token on refresh leaves the old one in
//     place until it expires; a request for it does not force refreshes that would not
//     renew it. Once it expired, requests get needs_login, and the profile of one that
//     serves ID tokens says needs_login and in last_error what to do, so that logging in
//     to every profile that needs it (authagent login, the tray) includes it.

// kubeIDToken is kube_token's value for the ID token, and the socket API's token= name.
const kubeIDToken = "id_token"

// IDToken returns a profile's OpenID Connect ID token as a credential (token_type Bearer,
// "Authorization: Bearer ID_TOKEN"), expiring at its exp claim, with at least minValid
// left: it refreshes first when less is left and refreshes renew it. A negative minValid
// means the profile's default (min_valid, else the smaller of 30 s and a quarter of the ID
// token's lifetime). When target is not nil, the profile must be allowed to send its token
// there. Errors wrap ErrBadRequest for a profile that can have no ID token (its kind, no
// issuer, no openid scope), ErrNeedsLogin when it has none now (not logged in, none was
// issued, or it expired and refreshes bring no new one), and otherwise what Credential's
// would.
func (a *Agent) IDToken(ctx context.Context, name string, minValid time.Duration, target *url.URL) (_ *CredentialInfo, err error) {
	defer func() { a.audit(ctx, audit.OpIDToken, name, target, err) }()
	p, err := a.lookup(name)
	if err != nil {
		return nil, err
	}
	it, ok := p.prov.(providers.IDTokener)
	if !ok {
		return nil, providers.Mark(ErrBadRequest, fmt.Errorf("profile %s (%s) has no ID token; only devicecode and oidc profiles with an issuer have one", name, p.cfg.Provider))
	}
	if err := it.IDTokens(); err != nil {
		return nil, providers.Mark(ErrBadRequest, err)
	}
	if target != nil {
		if err := p.allows(target); err != nil {
			return nil, err
		}
	}
	if err := a.confirm(ctx, p, OpIDToken, hostOf(target)); err != nil {
		return nil, err
	}
	return p.idToken(ctx, minValid)
}

// IDTokenForURL is IDToken for the profile whose hosts match the URL's host.
func (a *Agent) IDTokenForURL(ctx context.Context, target *url.URL, minValid time.Duration) (*CredentialInfo, error) {
	name, err := a.ProfileForURL(target)
	if err != nil {
		a.audit(ctx, audit.OpIDToken, "", target, err)
		return nil, err
	}
	return a.IDToken(ctx, name, minValid, target)
}

func (p *profile) idToken(ctx context.Context, minValid time.Duration) (*CredentialInfo, error) {
	p.mu.Lock()
	now := p.a.clock.Now()
	p.asked++
	p.wantIDLocked(now)
	if p.idFreshLocked(now, minValid) || p.idFreshestLocked(now, minValid) {
		c := p.cred
		p.mu.Unlock()
		return p.wrapID(c), nil
	}
	switch {
	case p.needsLogin || p.loginCancel != nil || (p.flight == nil && !p.retryAt.IsZero() && now.Before(p.retryAt)),
		usable(p.cred, now) && (p.cred.IDToken == "" || !p.idRenewed):
		// No fetch: the user has to act, a login is replacing the grant, we are backing
		// off, or a refresh would not bring an ID token. A still-usable one is better
		// than none.
		err := p.idErrorLocked(now, nil)
		c := p.cred
		p.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return p.wrapID(c), nil
	}
	f := p.fetchForLocked(CallerFrom(ctx))
	p.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now = p.a.clock.Now()
	p.wantIDLocked(now) // the fetch began a new lifetime; this request asks for its ID token
	if err := p.idErrorLocked(now, f.err); err != nil {
		return nil, err
	}
	return p.wrapID(p.cred), nil
}

func (p *profile) wrapID(c *providers.Credential) *CredentialInfo {
	return &CredentialInfo{Profile: p.name, Username: p.username(),
		Credential: *providers.TokenCredential("Bearer", c.IDToken, c.IDTokenExpiresAt)}
}

// idUsableLocked reports whether the cached ID token can be handed out at all.
func (p *profile) idUsableLocked(now time.Time) bool {
	c := p.cred
	return c != nil && c.IDToken != "" && (c.IDTokenExpiresAt.IsZero() || now.Before(c.IDTokenExpiresAt))
}

// idFreshLocked reports whether the cached ID token has at least minValid left (negative:
// the profile's default).
func (p *profile) idFreshLocked(now time.Time, minValid time.Duration) bool {
	if !p.idUsableLocked(now) {
		return false
	}
	exp := p.cred.IDTokenExpiresAt
	if exp.IsZero() {
		return true
	}
	if minValid < 0 {
		if p.cfg.MinValid > 0 {
			minValid = p.cfg.MinValid.D()
		} else {
			minValid = min(defaultMinMax, exp.Sub(p.idObtained)/4)
		}
	}
	return exp.Sub(now) >= minValid
}

// idFreshestLocked is freshestLocked for the ID token: it is as fresh as the provider makes
// them, so a request whose min_valid it does not meet gets it anyway.
func (p *profile) idFreshestLocked(now time.Time, minValid time.Duration) bool {
	if !p.idUsableLocked(now) || p.cred.IDTokenExpiresAt.IsZero() {
		return false
	}
	life := p.cred.IDTokenExpiresAt.Sub(p.idObtained)
	return now.Sub(p.fetchedAt) < refreshFloor ||
		now.Sub(p.idObtained) < time.Duration(freshestShare*float64(life)) ||
		minValid > life
}

// idErrorLocked is nil when the cached ID token can be served, and otherwise says why
// not and what to do; fetchErr is the error of the fetch just awaited, if any. An ID token
// problem only the user can fix also goes into last_error, when nothing else is there.
func (p *profile) idErrorLocked(now time.Time, fetchErr error) error {
	switch {
	case p.idUsableLocked(now):
		return nil
	case p.needsLogin:
		return p.errorLocked()
	case fetchErr != nil:
		return fetchErr
	case p.lastErr != "" && now.Before(p.retryAt):
		return p.errorLocked()
	case !usable(p.cred, now):
		return providers.Mark(ErrNeedsLogin, fmt.Errorf("profile %s has no usable token, so no ID token either; run `authagent login %s`", p.name, p.name))
	}
	msg := p.idProblemLocked(now)
	if p.lastErr == "" {
		// The profile says what to do, also to those who only look (list, the tray).
		p.lastErr = msg
		p.notifyLocked(true)
	}
	return providers.Mark(ErrNeedsLogin, errors.New(msg))
}

// idProblemLocked says what is wrong with the ID token of a profile that serves them and
// holds an access token, or "" when nothing is.
func (p *profile) idProblemLocked(now time.Time) string {
	c := p.cred
	if !p.idWanted || c == nil || p.idUsableLocked(now) {
		return ""
	}
	if c.IDToken != "" {
		why := "the identity provider sends no new one when the access token is refreshed"
		if c.IDTokenError != "" {
			why = c.IDTokenError
		}
		return fmt.Sprintf("profile %s: the ID token expired at %s, and %s; log in again for a new one: `authagent login %s`",
			p.name, c.IDTokenExpiresAt.UTC().Format(time.RFC3339), why, p.name)
	}
	why := c.IDTokenError
	if why == "" {
		why = "the identity provider issued none"
	}
	return fmt.Sprintf("profile %s has no ID token (%s); check that the client may get ID tokens, then log in again: `authagent login %s`", p.name, why, p.name)
}

// idNeedsLoginLocked reports whether the profile serves ID tokens and its ID token expired
// while refreshes bring no new one: only a login does. That holds whether or not the
// access token is still usable (an idle profile's may have expired too; a refresh would
// renew it, but not the ID token).
func (p *profile) idNeedsLoginLocked(now time.Time) bool {
	c := p.cred
	return p.idWanted && c != nil && c.IDToken != "" && !p.idRenewed && !p.idUsableLocked(now)
}

// watchIDLocked arranges an event for the moment the served ID token expires when
// refreshes do not renew it: the profile needs a login from then on, also for those who
// only look (list, the tray), and last_error says so.
func (p *profile) watchIDLocked(now time.Time) {
	if p.idTimer != nil {
		p.idTimer.Stop()
		p.idTimer = nil
	}
	c := p.cred
	if p.stopped || !p.idWanted || c == nil || c.IDToken == "" || p.idRenewed || !c.IDTokenExpiresAt.After(now) {
		return
	}
	var t Timer
	t = p.a.clock.AfterFunc(c.IDTokenExpiresAt.Sub(now), func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.idTimer != t || p.stopped {
			return
		}
		p.idTimer = nil
		now := p.a.clock.Now()
		if !p.idNeedsLoginLocked(now) {
			return
		}
		if p.lastErr == "" {
			p.lastErr = p.idProblemLocked(now)
		}
		p.notifyLocked(true)
	})
	p.idTimer = t
}

// refreshExpiryLocked is the expiry the proactive refresh of the cached credential is
// planned by, and when the token with that expiry came: the access token's, or the ID
// token's when it comes first, refreshes renew it, and its expiry drives refresh (the
// profile's kube_token is "id_token", or somebody asked for this ID token). Zero: no
// planned refresh.
func (p *profile) refreshExpiryLocked() (exp, from time.Time) {
	c := p.cred
	if c == nil {
		return time.Time{}, time.Time{}
	}
	exp, from = c.ExpiresAt, p.obtained
	if p.idDrivesLocked() && p.idRenewed && !c.IDTokenExpiresAt.IsZero() && (exp.IsZero() || c.IDTokenExpiresAt.Before(exp)) {
		exp, from = c.IDTokenExpiresAt, p.idObtained
	}
	return exp, from
}

// idDrivesLocked reports whether the ID token's expiry drives refresh: always for
// kube_token = "id_token", else while somebody asked for the current ID token.
func (p *profile) idDrivesLocked() bool {
	return p.cfg.KubeToken == kubeIDToken || p.idAsked
}

// wantIDLocked records a request for the ID token: the profile serves them, and the
// current one's expiry drives refresh. When that brings the planned refresh forward (it
// was planned by the access token alone), it is planned again.
func (p *profile) wantIDLocked(now time.Time) {
	if !p.idWanted {
		p.idWanted = true
		p.watchIDLocked(now)
	}
	if p.idAsked {
		return
	}
	before, _ := p.refreshExpiryLocked()
	p.idAsked = true
	c := p.cred
	if after, _ := p.refreshExpiryLocked(); c == nil || after.Equal(before) || p.timer == nil || p.failures > 0 || p.flight != nil {
		return
	}
	life := c.IDTokenExpiresAt.Sub(p.fetchedAt)
	due := p.fetchedAt.Add(time.Duration(refreshAt * float64(life)))
	if p.cfg.RefreshBefore > 0 {
		due = c.IDTokenExpiresAt.Add(-p.cfg.RefreshBefore.D())
	}
	due = maxTime(due, p.fetchedAt.Add(refreshFloor))
	p.scheduleLocked(max(due.Sub(now), 0))
}
