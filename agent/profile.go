package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"sync"
	"time"

	"github.com/authagent/authagent/providers"
)

// State is where a profile stands.
type State string

const (
	StateValid        State = "valid"         // a usable credential is cached
	StateRefreshing   State = "refreshing"    // a fetch is in flight
	StateExpired      State = "expired"       // no usable credential; the next request fetches one
	StateNeedsLogin   State = "needs_login"   // only the user can fix it: log in or store a secret
	StateLoginPending State = "login_pending" // a login waits for the user
	StateError        State = "error"         // the last fetch failed and nothing usable is cached
)

// ProfileInfo is a snapshot of a profile, without secrets.
type ProfileInfo struct {
	Name      string
	Provider  string
	State     State
	ExpiresAt time.Time // zero when no credential or no expiry
	Hosts     []string
	Username  string
	LastError string
	Login     *providers.Challenge
	// Capabilities lists what the profile's provider can do beyond Fetch: "login",
	// "logout", "push", "sign", "id_token".
	Capabilities []string
	// KubeToken is the profile's kube_token: which token kube-credential hands kubectl
	// ("id_token"), "" for the access token.
	KubeToken string
}

// Refresh policy constants, from DESIGN.md; README.md "Refresh policy" states the rules.
const (
	refreshAt      = 0.75 // fraction of the lifetime after which a token is refreshed
	refreshJitter  = 0.10 // ± fraction of the lifetime
	defaultMinMax  = 30 * time.Second
	backoffMin     = time.Second
	backoffMax     = 5 * time.Minute
	fetchTimeout   = 60 * time.Second
	defaultUsrName = "oauth2"

	// refreshFloor is the least time between a successful fetch and the next refresh,
	// proactive or forced by a request's min_valid, however short tokens live.
	refreshFloor = 5 * time.Second
	// freshestShare: a forced refresh waits until the cached token has used this share of
	// its lifetime; until then it is the freshest token the provider gives.
	freshestShare = 0.10
	// maxRetryAfter caps how long a provider's Retry-After can hold off the next try.
	maxRetryAfter = time.Hour
	// idleFloor: a profile whose tokens live less than this, and that nobody asked for since
	// its last fetch, is refreshed on its own no sooner than this after that fetch, so the
	// short-lived tokens of an idle profile do not keep the provider busy all day; the next
	// request fetches on demand.
	idleFloor = 5 * time.Minute
	// rejectWindow: a token a server refuses within this time of its fetch counts toward
	// a backoff, so a client that rejects every token cannot drive refreshes at full rate.
	rejectWindow = time.Minute
)

// profile is one configured credential and its cache.
type profile struct {
	a    *Agent
	name string
	cfg  *providers.ProfileConfig
	prov providers.Provider

	mu          sync.Mutex
	cred        *providers.Credential
	obtained    time.Time // when cred was fetched; its lifetime runs from here
	fetchedAt   time.Time // when the last fetch succeeded (even if it found the same cred)
	flight      *flight
	timer       Timer // next refresh or retry
	failures    int   // consecutive failed fetches
	rejects     int   // consecutive tokens a server refused within rejectWindow of their fetch
	asked       int   // requests for the credential since the last successful fetch
	retryAt     time.Time
	needsLogin  bool
	lastErr     string
	login       *providers.Challenge
	loginCancel context.CancelFunc // set while a login runs
	loginDone   chan struct{}      // closed when the last login's goroutine ended
	loginGen    int                // bumped by every login and logout
	loginQuiet  bool               // the login's client left before it showed anything
	stopped     bool
	stopping    chan struct{}      // closed by stop
	stopWatch   context.CancelFunc // ends a Watcher's watch
	sourceDirty bool               // the token source changed while a fetch was in flight
	lastState   State

	// The ID token (see idtoken.go) rides on cred. idWanted: the profile serves ID tokens
	// (kube_token = "id_token", or one was asked for since the agent started), so its state
	// and last_error say when only a login brings a new one. idAsked: an ID token was asked
	// for since the last fetch, so for the rest of that ID token's lifetime its expiry
	// drives refresh (always so for kube_token = "id_token"). idObtained: when the current
	// one first came. idRenewed: the last fetch or login brought a new one, so refreshing
	// renews it. idTimer: fires when an ID token that refreshes do not renew expires.
	idWanted   bool
	idAsked    bool
	idRenewed  bool
	idObtained time.Time
	idTimer    Timer

	confirm confirmState // see confirm.go
}

type flight struct {
	gen    int     // loginGen when the fetch started
	caller *Caller // the caller of the request that started it; nil for a background refresh
	done   chan struct{}
	cred   *providers.Credential
	err    error
}

func newProfile(a *Agent, name string, cfg *providers.ProfileConfig, prov providers.Provider) *profile {
	return &profile{a: a, name: name, cfg: cfg, prov: prov, lastState: StateExpired, stopping: make(chan struct{}),
		idWanted: cfg.KubeToken == kubeIDToken}
}

// start fetches a first credential in the background, so state is known early.
func (p *profile) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.fetchLocked()
	if w, ok := p.prov.(providers.Watcher); ok {
		ctx, cancel := context.WithCancel(p.a.ctx)
		p.stopWatch = cancel
		go func() {
			err := w.Watch(ctx, p.sourceChanged)
			if err != nil && ctx.Err() == nil {
				p.a.log.Warn("cannot watch the token source; changes are picked up at the next refresh", "profile", p.name, "error", err)
			}
		}()
	}
}

// sourceChanged fetches again right away because the provider's source changed.
func (p *profile) sourceChanged() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.retryAt = time.Time{}
	if p.flight != nil {
		p.sourceDirty = true // the fetch in flight may predate the change: see runFetch
	}
	p.fetchLocked()
}

// stop cancels timers, the watch and a login in progress; it returns the fetch in flight,
// which finishes (its result is dropped) so that it can still save what it got.
func (p *profile) stop() *flight {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		close(p.stopping)
	}
	p.stopped = true
	if p.stopWatch != nil {
		p.stopWatch()
	}
	if p.loginCancel != nil {
		p.loginCancel()
	}
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	if p.idTimer != nil {
		p.idTimer.Stop()
		p.idTimer = nil
	}
	return p.flight
}

func (p *profile) info() ProfileInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.infoLocked(p.a.clock.Now())
}

func (p *profile) infoLocked(now time.Time) ProfileInfo {
	info := ProfileInfo{
		Name:      p.name,
		Provider:  p.cfg.Provider,
		State:     p.stateLocked(now),
		Hosts:     append([]string(nil), p.cfg.Hosts...),
		Username:  p.username(),
		LastError: p.lastErr,
	}
	if p.cred != nil {
		info.ExpiresAt = p.cred.ExpiresAt
	}
	info.Capabilities = capabilities(p.prov)
	if p.cfg.KubeToken == kubeIDToken {
		info.KubeToken = kubeIDToken
	}
	if p.login != nil {
		l := *p.login
		info.Login = &l
	}
	return info
}

func capabilities(prov providers.Provider) []string {
	var c []string
	if _, ok := prov.(providers.Loginer); ok {
		c = append(c, "login")
	}
	if _, ok := prov.(providers.Logouter); ok {
		c = append(c, "logout")
	}
	if _, ok := prov.(providers.Pusher); ok {
		c = append(c, "push")
	}
	if _, ok := prov.(providers.Signer); ok {
		c = append(c, "sign")
	}
	if it, ok := prov.(providers.IDTokener); ok && it.IDTokens() == nil {
		c = append(c, "id_token")
	}
	return c
}

func (p *profile) username() string {
	if p.cfg.Username != "" {
		return p.cfg.Username
	}
	return defaultUsrName
}

func (p *profile) stateLocked(now time.Time) State {
	switch {
	case p.login != nil:
		return StateLoginPending
	case p.flight != nil:
		return StateRefreshing
	case p.needsLogin, p.idNeedsLoginLocked(now):
		return StateNeedsLogin
	case usable(p.cred, now):
		return StateValid
	case p.lastErr != "":
		return StateError
	}
	return StateExpired
}

// usable reports whether c can still be handed out at all.
func usable(c *providers.Credential, now time.Time) bool {
	return c != nil && (c.ExpiresAt.IsZero() || now.Before(c.ExpiresAt))
}

// notifyLocked publishes an event when the state or what a watcher sees changed.
func (p *profile) notifyLocked(force bool) {
	if p.stopped {
		return
	}
	info := p.infoLocked(p.a.clock.Now())
	if !force && info.State == p.lastState {
		return
	}
	p.lastState = info.State
	p.a.publish(EventChanged, info)
}

// minValidFor is how much validity a request needs by default for cred.
func (p *profile) minValidFor(c *providers.Credential) time.Duration {
	if p.cfg.MinValid > 0 {
		return p.cfg.MinValid.D()
	}
	life := c.ExpiresAt.Sub(p.obtained)
	return min(defaultMinMax, life/4)
}

func (p *profile) fresh(c *providers.Credential, now time.Time, minValid time.Duration) bool {
	if c == nil {
		return false
	}
	if c.ExpiresAt.IsZero() {
		return true
	}
	if minValid < 0 {
		minValid = p.minValidFor(c)
	}
	left := c.ExpiresAt.Sub(now)
	return left > 0 && left >= minValid
}

// freshestLocked reports whether the cached credential is usable and as fresh as the
// provider makes them, so that a request whose min_valid it does not meet gets it anyway,
// with its real expiry: it was fetched less than refreshFloor ago, or has used less than
// freshestShare of its lifetime, or minValid is longer than its whole lifetime (no refresh
// could meet it; the proactive refresh comes as usual).
func (p *profile) freshestLocked(now time.Time, minValid time.Duration) bool {
	c := p.cred
	if !usable(c, now) || c.ExpiresAt.IsZero() {
		return false
	}
	life := c.ExpiresAt.Sub(p.obtained)
	return now.Sub(p.fetchedAt) < refreshFloor ||
		now.Sub(p.obtained) < time.Duration(freshestShare*float64(life)) ||
		minValid > life
}

func (p *profile) allows(target *url.URL) error {
	if err := checkScheme(target); err != nil {
		return providers.Mark(ErrForbidden, fmt.Errorf("profile %s: %s", p.name, err))
	}
	if len(p.cfg.Hosts) == 0 {
		return providers.Mark(ErrForbidden, fmt.Errorf("profile %s has no hosts, so its token goes nowhere by URL; add hosts = [\"%s\"] to it", p.name, target.Hostname()))
	}
	host, port := target.Hostname(), urlPort(target)
	for _, h := range p.cfg.Hosts {
		if hostMatch(h, host, port) > 0 {
			return nil
		}
	}
	return providers.Mark(ErrForbidden, fmt.Errorf("profile %s may not send its token to %s (not in its hosts)", p.name, target.Host))
}

func (p *profile) credential(ctx context.Context, minValid time.Duration) (*CredentialInfo, error) {
	p.mu.Lock()
	now := p.a.clock.Now()
	p.asked++
	if p.fresh(p.cred, now, minValid) || p.freshestLocked(now, minValid) {
		c := p.cred
		p.mu.Unlock()
		return p.wrap(c), nil
	}
	switch {
	case p.needsLogin || p.loginCancel != nil || (p.flight == nil && !p.retryAt.IsZero() && now.Before(p.retryAt)):
		// No fetch now: the user has to act, a login is replacing the grant, or we are
		// backing off. A still-usable token is better than none.
		if usable(p.cred, now) {
			c := p.cred
			p.mu.Unlock()
			return p.wrap(c), nil
		}
		err := p.errorLocked()
		p.mu.Unlock()
		return nil, err
	}
	f := p.fetchForLocked(CallerFrom(ctx))
	p.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		p.mu.Lock()
		c := p.cred
		ok := usable(c, p.a.clock.Now())
		p.mu.Unlock()
		if ok {
			return p.wrap(c), nil
		}
		return nil, f.err
	}
	return p.wrap(f.cred), nil
}

func (p *profile) wrap(c *providers.Credential) *CredentialInfo {
	return &CredentialInfo{Profile: p.name, Username: p.username(), Credential: *c}
}

// errorLocked explains why no credential can be served right now.
func (p *profile) errorLocked() error {
	if p.needsLogin {
		return providers.Mark(ErrNeedsLogin, fmt.Errorf("profile %s: %s", p.name, p.lastErr))
	}
	wait := p.retryAt.Sub(p.a.clock.Now()).Round(time.Second)
	return providers.Mark(ErrProvider, fmt.Errorf("profile %s: %s (next try in %s)", p.name, p.lastErr, wait))
}

// fetchLocked joins the fetch in flight or starts one.
func (p *profile) fetchLocked() *flight { return p.fetchForLocked(nil) }

// fetchForLocked is fetchLocked for a request of caller c: a fetch it starts carries c, so
// that a subject_profile's token it trades is recorded for c in the audit log.
func (p *profile) fetchForLocked(c *Caller) *flight {
	if p.flight != nil {
		return p.flight
	}
	f := &flight{done: make(chan struct{}), gen: p.loginGen, caller: c}
	p.flight = f
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.notifyLocked(false)
	go p.runFetch(f)
	return f
}

func (p *profile) runFetch(f *flight) {
	ctx, cancel := context.WithTimeout(p.a.ctx, max(fetchTimeout, p.cfg.Timeout.D()+5*time.Second))
	defer cancel()
	if f.caller != nil {
		ctx = WithCaller(ctx, f.caller)
	}
	ctx, meta := providers.WithResponseMeta(ctx)
	var cred *providers.Credential
	var err error
	if l, ok := p.prov.(providers.Local); !ok || !l.Local() {
		err = p.a.awaitCall(ctx, p.name, p.stopping)
	}
	if err == nil {
		gl := p.a.grantLock(p.name)
		gl.Lock()
		cred, err = p.prov.Fetch(ctx)
		gl.Unlock()
	}
	if err == nil {
		err = checkCredential(cred)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.a.clock.Now()
	if err == nil {
		err = providers.CheckArrival(cred.ExpiresAt, now, meta)
	}
	p.flight = nil
	switch {
	case f.gen != p.loginGen:
		// A login or logout happened meanwhile; its outcome stands.
		f.err = providers.Mark(ErrProvider, fmt.Errorf("profile %s: %w", p.name, errLoginSuperseded))
		if p.cred != nil && !p.needsLogin {
			f.cred = p.cred
			f.err = nil
		}
	case err != nil:
		f.err = p.failedLocked(now, err, meta)
	default:
		f.cred = cred
		p.succeededLocked(now, cred)
	}
	close(f.done)
	p.notifyLocked(true)
	// The token source changed while this fetch ran (sourceChanged joined it): the fetch
	// may have read the source before the change and failed for want of it. One more
	// fetch takes the change; a fetch that worked needs none.
	if p.sourceDirty {
		p.sourceDirty = false
		if err != nil && f.gen == p.loginGen && !p.stopped && p.loginCancel == nil {
			p.retryAt = time.Time{}
			p.fetchLocked()
		}
	}
}

func (p *profile) succeededLocked(now time.Time, cred *providers.Credential) {
	// The same token again (a pushed token, a file not yet rotated, a provider that hands
	// out its cached token with a shorter expires_in) is not a new one: its lifetime still
	// counts from when it first came.
	same := p.cred != nil && p.cred.Token == cred.Token
	if !same {
		p.obtained = now
	}
	p.idRenewed = cred.IDToken != "" && (p.cred == nil || p.cred.IDToken != cred.IDToken)
	if p.idRenewed {
		p.idObtained = now
	}
	p.fetchedAt = now
	p.cred = cred
	p.asked = 0
	p.idAsked = false // a new lifetime: nobody asked for its ID token yet
	p.failures, p.retryAt, p.needsLogin, p.lastErr = 0, time.Time{}, false, cred.Warning
	if msg := p.idProblemLocked(now); msg != "" && p.lastErr == "" {
		p.lastErr = msg
	}
	p.watchIDLocked(now)
	expires, _ := p.refreshExpiryLocked()
	if expires.IsZero() || p.stopped {
		return
	}
	if same && !p.idRenewed {
		// The source still has the token we had (a pushed token, a file not yet rotated):
		// asking again before it expires would only find it again.
		p.scheduleLocked(max(expires.Sub(now), refreshFloor))
		return
	}
	life := expires.Sub(now)
	var at time.Duration
	if p.cfg.RefreshBefore > 0 {
		at = life - p.cfg.RefreshBefore.D()
	} else {
		at = time.Duration(float64(life) * refreshAt)
	}
	at += time.Duration((p.a.opts.Jitter()*2 - 1) * refreshJitter * float64(life))
	at = max(at, refreshFloor)
	p.scheduleLocked(at)
	p.a.log.Debug("credential fetched", "profile", p.name, "expires_at", expires.UTC(), "refresh_in", at.Round(time.Millisecond))
}

// failedLocked records a failed fetch and returns the error for waiting callers. The next
// try waits for the backoff: exponential from backoffMin to backoffMax, with full jitter
// above backoffMin, and at least as long as the provider's Retry-After (up to
// maxRetryAfter).
func (p *profile) failedLocked(now time.Time, err error, meta *providers.ResponseMeta) error {
	if errors.Is(err, providers.ErrNeedsLogin) {
		p.needsLogin = true
		p.lastErr = err.Error()
		p.retryAt = time.Time{}
		p.a.log.Warn("profile needs login", "profile", p.name, "error", err)
		return providers.Mark(ErrNeedsLogin, fmt.Errorf("profile %s: %w", p.name, err))
	}
	p.failures++
	wait := max(p.backoffLocked(p.failures), min(meta.RetryAfter(), maxRetryAfter))
	p.retryAt = now.Add(wait)
	p.lastErr = err.Error()
	p.a.log.Warn("fetch failed", "profile", p.name, "error", err, "failures", p.failures, "retry_in", wait.Round(time.Millisecond))
	if !p.stopped {
		p.scheduleLocked(wait)
	}
	return providers.Mark(ErrProvider, fmt.Errorf("profile %s: %w", p.name, err))
}

// shortLivedLocked reports whether the token whose expiry plans the proactive refresh (the
// access token's, or the ID token's: see refreshExpiryLocked) lives less than idleFloor.
func (p *profile) shortLivedLocked() bool {
	exp, from := p.refreshExpiryLocked()
	return !exp.IsZero() && exp.Sub(from) < idleFloor
}

// backoffLocked is the wait after the n-th failure in a row: exponential from backoffMin to
// backoffMax, with full jitter above backoffMin.
func (p *profile) backoffLocked(n int) time.Duration {
	step := min(backoffMin<<min(n-1, 20), backoffMax)
	return backoffMin + time.Duration(p.a.opts.Jitter()*float64(step-backoffMin))
}

func (p *profile) scheduleLocked(d time.Duration) {
	if p.timer != nil {
		p.timer.Stop()
	}
	var t Timer
	t = p.a.clock.AfterFunc(d, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		// A timer that fired while p.mu was held may have been replaced meanwhile.
		if p.timer != t || p.stopped || p.needsLogin || p.loginCancel != nil {
			return
		}
		p.timer = nil
		now := p.a.clock.Now()
		if p.failures == 0 && p.asked == 0 && p.shortLivedLocked() && now.Sub(p.fetchedAt) < idleFloor {
			// A proactive refresh of a short-lived token nobody has asked for since the
			// last fetch waits for idleFloor; a request before then fetches on demand.
			p.scheduleLocked(p.fetchedAt.Add(idleFloor).Sub(now))
			return
		}
		p.retryAt = time.Time{}
		p.fetchLocked()
	})
	p.timer = t
}

// reject drops the cached credential; the next request fetches a new one. A backoff in
// progress stays: a server refusing tokens must not let clients hurry the provider. Tokens
// refused one after another within rejectWindow of their fetch start a backoff of their
// own from the second one on, as failed fetches do; a token that was handed out more than
// once, or lived past rejectWindow, evidently worked and ends the run. A credential
// without an expiry (a static API key) is fetched again at once, outside a backoff: the
// next request would do just that, and until then the profile would show as expired,
// which a key that never expires is not.
func (p *profile) reject() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.a.clock.Now()
	static := p.cred != nil && p.cred.ExpiresAt.IsZero()
	if p.cred != nil {
		// Refused soon after its fetch, and handed out no more than once: it never worked.
		if now.Sub(p.fetchedAt) < rejectWindow && p.asked <= 1 {
			p.rejects++
		} else {
			p.rejects = 0
		}
	}
	p.cred = nil
	if p.rejects >= 2 {
		wait := p.backoffLocked(p.rejects - 1)
		p.retryAt = maxTime(p.retryAt, now.Add(wait))
		p.lastErr = fmt.Sprintf("servers refused %d tokens in a row, each within %s of its fetch; the next fetch waits %s (is the profile's audience, scope or hosts right?)",
			p.rejects, rejectWindow, p.retryAt.Sub(now).Round(time.Second))
	}
	p.a.log.Info("credential rejected by a server; dropped from cache", "profile", p.name, "rejected_in_a_row", p.rejects)
	if static && !p.stopped && !p.needsLogin && p.loginCancel == nil && !now.Before(p.retryAt) {
		p.fetchLocked()
	}
	p.notifyLocked(true)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// checkCredential refuses a credential that could not be sent as it is: a value with a
// line break or another control character would inject headers into a request.
func checkCredential(c *providers.Credential) error {
	if c == nil {
		return errors.New("provider returned no credential")
	}
	if providers.HasControl(c.Token) {
		return errors.New("the token contains a line break or another control character, so it cannot be sent; store or issue a clean one")
	}
	for _, m := range []map[string]string{c.Headers, c.Metadata} {
		for k, v := range m {
			if providers.HasControl(k) || providers.HasControl(v) {
				return fmt.Errorf("the value of %s contains a line break or another control character, so it cannot be sent; store a clean secret", k)
			}
		}
	}
	return nil
}

func sameConfig(a, b *providers.ProfileConfig) bool { return reflect.DeepEqual(a, b) }
