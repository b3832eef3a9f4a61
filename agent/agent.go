package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/authagent/authagent/agent/audit"
	"github.com/authagent/authagent/providers"
)

// Options wire an Agent. Config and Store are required; the rest have real defaults.
type Options struct {
	Config     *Config
	Store      SecretStore
	Providers  map[string]providers.Factory // by provider name, e.g. "apikey"
	Clock      Clock
	Logger     *slog.Logger
	HTTPClient *http.Client   // for providers talking to IdPs
	Jitter     func() float64 // uniform in [0,1); tests fix it
	Version    string
	// Confirmer asks the user before a profile with confirm set is used; nil: every such
	// use is denied, with a message that says how to answer.
	Confirmer Confirmer
	// Audit, when set, records each credential, sign, login, logout, push, reject and
	// profile change with its caller and outcome (see audit.go).
	Audit Auditor
}

// Agent owns the profiles and their credentials.
type Agent struct {
	opts    Options
	clock   Clock
	log     *slog.Logger
	store   SecretStore
	started time.Time
	bus     bus

	ctx    context.Context // cancelled by Close; parent of every fetch
	cancel context.CancelFunc

	// Locks are taken in this order. editMu is held through PutProfile, DeleteProfile and
	// SetSecret: each is one change of secrets and file. fileMu is held while the config
	// file is edited or reloaded, and guards text; cfg changes under fileMu and mu. mu
	// guards profiles and cfg; it is not held while the file is written, so requests are
	// served meanwhile.
	editMu   sync.Mutex
	fileMu   sync.Mutex
	mu       sync.Mutex
	cfg      *Config
	text     *configText // the config file as last read or written (see editConfig); nil when unknown
	profiles profileSet

	grantsMu sync.Mutex
	grants   map[string]*grant // see grantOf

	pendingMu sync.Mutex
	pending   map[string]string // secrets the store refused, by account; see secretView

	// Guarded by mu: the error of the last reload ("" after one that worked), and the
	// secret_store the agent started with, which only a restart changes.
	reloadErr  string
	startStore string

	questions openQuestions // questions to the user open at once (confirm.go)
}

// validProfileName: a letter or digit, then up to 63 letters, digits, '.', '_' or '-'.
// (A function, not a regexp: the counted repetition compiles to a large program at
// start-up, which every one-shot CLI call would pay for.)
func validProfileName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return false
		}
	}
	return true
}

// New builds an agent from a loaded config. A profile whose configuration its provider
// rejects makes New fail with an error naming the file, line and key.
func New(opts Options) (*Agent, error) {
	if opts.Config == nil || opts.Store == nil {
		return nil, errors.New("agent: Config and Store are required")
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	// Every provider call goes through providers.Transport: it records the server's Date
	// and Retry-After for the refresh policy and reads error objects sent with a 2xx; and
	// it follows no redirect that would send a secret again (providers.CheckRedirect).
	hc := *opts.HTTPClient
	hc.Transport = &providers.Transport{Base: hc.Transport, Now: opts.Clock.Now}
	if hc.CheckRedirect == nil {
		hc.CheckRedirect = providers.CheckRedirect
	}
	opts.HTTPClient = &hc
	a := &Agent{
		opts:    opts,
		clock:   opts.Clock,
		log:     opts.Logger,
		store:   opts.Store,
		started: opts.Clock.Now(),
		cfg:     opts.Config,
		text:    opts.Config.text,

		startStore: storeKind(opts.Config.SecretStore),
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	built, err := a.buildAll(opts.Config)
	if err != nil {
		return nil, err
	}
	a.profiles = newProfileSet(built)
	a.cfg = a.cfg.served()
	for _, p := range built {
		p.start()
	}
	return a, nil
}

// Close stops all timers, cancels fetches in flight and ends every event subscription.
func (a *Agent) Close() {
	a.mu.Lock()
	ps := a.profiles.all()
	a.mu.Unlock()
	// Fetches in flight may hold a rotated refresh token the IdP already issued: let them
	// save it before their context goes.
	deadline := time.After(flushTimeout)
	for _, p := range ps {
		if f := p.stop(); f != nil {
			select {
			case <-f.done:
			case <-deadline:
			}
		}
	}
	a.cancel()
	a.bus.closeAll()
}

func (a *Agent) buildAll(cfg *Config) (map[string]*profile, error) {
	out := make(map[string]*profile, len(cfg.Profiles))
	var errs []error
	for name, pc := range cfg.Profiles {
		p, err := a.build(name, pc)
		if err != nil {
			errs = append(errs, cfg.Locate(name, err))
			continue
		}
		out[name] = p
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// build validates a profile's common keys and asks its provider's factory for a Provider.
func (a *Agent) build(name string, pc *providers.ProfileConfig) (*profile, error) {
	if !validProfileName(name) {
		return nil, fmt.Errorf("profile name %q: use letters, digits, '.', '_' and '-' (at most 64)", name)
	}
	for _, h := range pc.Hosts {
		if err := validHostEntry(h); err != nil {
			return nil, &providers.ConfigError{Key: "hosts", Message: err.Error()}
		}
	}
	if err := checkConfirm(pc); err != nil {
		return nil, err
	}
	factory, ok := a.opts.Providers[pc.Provider]
	if !ok {
		return nil, &providers.ConfigError{Key: "provider", Message: fmt.Sprintf("unknown provider %q: want one of %s", pc.Provider, a.providerNames())}
	}
	prov, err := factory(pc, providers.Env{
		Name:       name,
		Secrets:    secretView{a: a, prefix: name + "/"},
		HTTPClient: a.opts.HTTPClient,
		Logger:     a.log.With("profile", name),
		Now:        a.clock.Now,
		// A token exchange's subject_profile (see subject.go).
		ProfileToken: func(ctx context.Context, subject string, idToken bool, sendTo *url.URL) (string, time.Time, error) {
			return a.profileToken(ctx, name, subject, idToken, sendTo)
		},
		ProfileChanged: a.profileChanged,
	})
	if err != nil {
		return nil, err
	}
	return newProfile(a, name, pc, prov), nil
}

func (a *Agent) providerNames() string {
	names := make([]string, 0, len(a.opts.Providers))
	for n := range a.opts.Providers {
		names = append(names, fmt.Sprintf("%q", n))
	}
	sort.Strings(names)
	return fmt.Sprint(names)
}

func (a *Agent) lookup(name string) (*profile, error) {
	a.mu.Lock()
	p := a.profiles.get(name)
	a.mu.Unlock()
	if p == nil {
		if near := a.nearestProfile(name); near != "" {
			return nil, providers.Mark(ErrUnknownProfile, fmt.Errorf("no profile %q; did you mean %q? (`authagent list` shows the profiles)", name, near))
		}
		return nil, providers.Mark(ErrUnknownProfile, fmt.Errorf("no profile %q; `authagent list` shows the profiles, `authagent add %s --provider KIND` defines one", name, name))
	}
	return p, nil
}

// nearestProfile is the defined profile whose name is closest to name (case aside, at
// most two edits away), or "". Names are compared only when there are few enough for it
// to be cheap.
func (a *Agent) nearestProfile(name string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.profiles.len() > 1000 {
		return ""
	}
	best, bestD := "", 3
	for _, p := range a.profiles.all() {
		if d := editDistance(strings.ToLower(name), strings.ToLower(p.name)); d < bestD || d == bestD && p.name < best {
			best, bestD = p.name, d
		}
	}
	return best
}

// Status describes the agent.
type Status struct {
	Version   string
	PID       int
	Uptime    time.Duration
	Profiles  int
	Store     StoreInfo
	StartedAt time.Time
	// ConfigError is why the last reload failed (file:line: key: problem), while the agent
	// keeps serving the config it had; "" when the last reload worked, or none was tried.
	ConfigError string
	// ConfigWarning is a change in the config that only a restart applies (secret_store);
	// "" when there is none.
	ConfigWarning string
}

// Status reports the agent's version, uptime, profile count and secret store, and what
// went wrong with the last reload.
func (a *Agent) Status() Status {
	a.mu.Lock()
	n := a.profiles.len()
	configErr, configWarning := a.reloadErr, a.restartWarningLocked()
	a.mu.Unlock()
	return Status{
		Version:       a.opts.Version,
		PID:           os.Getpid(),
		Uptime:        a.clock.Now().Sub(a.started),
		Profiles:      n,
		Store:         a.store.Info(),
		StartedAt:     a.started,
		ConfigError:   configErr,
		ConfigWarning: configWarning,
	}
}

// storeKind is a config's secret_store with its default filled in.
func storeKind(s string) string {
	if s == "" {
		return "keyring"
	}
	return s
}

// restartWarningLocked says what in the loaded config waits for a restart; a.mu is held.
func (a *Agent) restartWarningLocked() string {
	if now := storeKind(a.cfg.SecretStore); now != a.startStore {
		return fmt.Sprintf("secret_store in %s is now %q, but this agent keeps secrets in %q until it restarts: "+
			"run `authagent stop`, then `eval \"$(authagent start)\"`", a.cfg.Path, now, a.startStore)
	}
	return ""
}

// Profiles lists every profile, sorted by name.
func (a *Agent) Profiles() []ProfileInfo {
	a.mu.Lock()
	ps := a.profiles.all()
	a.mu.Unlock()
	out := make([]ProfileInfo, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Profile describes one profile.
func (a *Agent) Profile(name string) (ProfileInfo, error) {
	p, err := a.lookup(name)
	if err != nil {
		return ProfileInfo{}, err
	}
	return p.info(), nil
}

// CredentialInfo is a profile's current credential.
type CredentialInfo struct {
	Profile  string
	Username string
	providers.Credential
}

// Credential returns a profile's credential with at least minValid left, refreshing first
// when less is left. A negative minValid means the profile's default (min_valid, else the
// smaller of 30 s and a quarter of the token's lifetime). When target is not nil, the
// profile must be allowed to send its token there (hosts and scheme).
func (a *Agent) Credential(ctx context.Context, name string, minValid time.Duration, target *url.URL) (_ *CredentialInfo, err error) {
	defer func() { a.audit(ctx, audit.OpCredential, name, target, err) }()
	p, err := a.lookup(name)
	if err != nil {
		return nil, err
	}
	if target != nil {
		if err := p.allows(target); err != nil {
			return nil, err
		}
	}
	if _, signs := p.prov.(providers.Signer); signs {
		return nil, providers.Mark(ErrBadRequest, fmt.Errorf("profile %s signs requests instead of handing out a token: use `authagent sign %s …`, `authagent curl %s -- …` or POST /v1/profiles/%s/sign", name, name, name, name))
	}
	if err := a.confirm(ctx, p, OpCredential, hostOf(target)); err != nil {
		return nil, err
	}
	return p.credential(ctx, minValid)
}

// CredentialForURL returns the credential of the profile whose hosts match the URL's host.
func (a *Agent) CredentialForURL(ctx context.Context, target *url.URL, minValid time.Duration) (*CredentialInfo, error) {
	name, err := a.ProfileForURL(target)
	if err != nil {
		a.audit(ctx, audit.OpCredential, "", target, err)
		return nil, err
	}
	return a.Credential(ctx, name, minValid, target)
}

// ProfileForURL picks the profile whose hosts match the URL best (see hostMatch). Ties go
// to the profile whose name sorts first. It looks up an index of the hosts, so its cost
// does not grow with the number of profiles.
func (a *Agent) ProfileForURL(target *url.URL) (string, error) {
	if target == nil || target.Host == "" {
		return "", providers.Mark(ErrBadRequest, errors.New("url must be absolute, like https://api.example.com/path"))
	}
	a.mu.Lock()
	best := a.profiles.hosts.best(target.Hostname(), urlPort(target))
	a.mu.Unlock()
	if best == "" {
		return "", providers.Mark(ErrNoProfile, fmt.Errorf("no profile lists host %s in its hosts", target.Host))
	}
	return best, nil
}

// Reject drops a profile's cached access token because a server refused it; the next
// request fetches a new one. Stored secrets (refresh token, API secret) are kept.
func (a *Agent) Reject(ctx context.Context, name string) (err error) {
	defer func() { a.audit(ctx, audit.OpReject, name, nil, err) }()
	p, err := a.lookup(name)
	if err != nil {
		return err
	}
	p.reject()
	return nil
}

// Subscribe returns a subscription to profile events. Close it when done.
func (a *Agent) Subscribe() *Subscription { return a.bus.subscribe() }

func (a *Agent) publish(typ string, info ProfileInfo) {
	a.bus.publish(Event{Type: typ, Profile: info, Time: a.clock.Now().UTC()})
}

// changeTimeout bounds a change of a profile (define, remove, push) once it has begun. It
// runs on a context of its own, so it finishes or rolls back whether or not its caller
// waits; the caller's context only carries values.
const changeTimeout = time.Minute

// PutProfile defines or replaces a profile: it stores the secret (when not nil), writes the
// profile's table into the config file, keeping the rest of the file as it is, and starts
// serving it. Once the checks pass, the change runs on a context of its own (up to
// changeTimeout) and finishes or rolls back: when the file cannot be written, the secret
// that was stored before is put back. Errors wrap ErrBadRequest for a bad name, config or
// secret, and ErrUnavailable when the secret store or the file refuses. A profile that has
// confirm set is replaced only when the user allows it (OpChange); else ErrDenied. So is a
// definition whose subject_profile (or one down its chain) has confirm set: the user is
// asked about that profile (OpChange with Trader), every time. A name no profile is
// served under starts without the secrets an earlier profile of that name left in the
// store (a reload removed it): they are deleted first.
func (a *Agent) PutProfile(ctx context.Context, name string, pc *providers.ProfileConfig, secret *string) (err error) {
	defer func() { a.audit(ctx, audit.OpPutProfile, name, nil, err) }()
	if !validProfileName(name) {
		return providers.Mark(ErrBadRequest, fmt.Errorf("profile name %q: use letters, digits, '.', '_' and '-' (at most 64)", name))
	}
	if pc.Provider == "" {
		return providers.Mark(ErrBadRequest, fmt.Errorf("profile %s: provider is required (one of %s)", name, a.providerNames()))
	}
	p, err := a.build(name, pc)
	if err != nil {
		return providers.Mark(ErrBadRequest, fmt.Errorf("profile %s: %w", name, err))
	}
	if secret != nil && providers.HasControl(*secret) {
		return providers.Mark(ErrBadRequest, fmt.Errorf("profile %s: the secret contains a line break or another control character; store it without them", name))
	}
	if secret != nil {
		if err := CheckSecretSize(len(*secret)); err != nil {
			return fmt.Errorf("profile %s: %w", name, err)
		}
	}
	asked, err := a.confirmChange(ctx, name, OpChange) // before editMu: the user may take a while
	if err != nil {
		return err
	}
	// A definition that trades the token of a profile with confirm set (subject_profile,
	// down the chain) hands that token to whoever may use this one: asked too.
	traded, err := a.confirmTrades(ctx, name, pc)
	if err != nil {
		return err
	}
	a.editMu.Lock()
	defer a.editMu.Unlock()
	if err := a.changeStillAllowed(name, asked); err != nil {
		return err
	}
	if err := a.tradesStillAllowed(ctx, name, pc, traded); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), changeTimeout)
	defer cancel()
	if !a.defined(name) {
		// Secrets of a profile a reload removed stay in the store under its name: a new
		// definition starts without them, as after a removal, and is not handed the old
		// profile's secret unasked.
		if err := a.deleteSecrets(ctx, name); err != nil {
			return providers.Mark(ErrUnavailable, fmt.Errorf("profile %s is not defined: deleting the secrets an earlier profile of that name left in the store failed, try again: %w", name, err))
		}
	}
	var undo func(context.Context) error
	if secret != nil {
		account := name + "/" + providers.SecretKey
		old, err := a.store.Get(ctx, account)
		switch {
		case err == nil:
			undo = func(ctx context.Context) error { return a.store.Set(ctx, account, old) }
		case errors.Is(err, providers.ErrSecretNotFound):
			undo = func(ctx context.Context) error { return a.store.Delete(ctx, account) }
		default:
			return providers.Mark(ErrUnavailable, fmt.Errorf("read the secret of %s before replacing it: %w", name, err))
		}
		if err := a.store.Set(ctx, account, *secret); err != nil {
			return providers.Mark(ErrUnavailable, fmt.Errorf("store secret of %s: %w", name, err))
		}
		a.pendingMu.Lock()
		delete(a.pending, account) // an older value waiting to be written back must not return
		a.pendingMu.Unlock()
	}
	a.fileMu.Lock()
	defer a.fileMu.Unlock()
	path := a.cfg.Path
	text, err := writeProfile(path, name, pc, a.text)
	a.text = text
	if err != nil {
		err = fmt.Errorf("write profile %s to %s: %w", name, path, err)
		if undo != nil {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), changeTimeout)
			defer cancel()
			if uerr := undo(uctx); uerr != nil {
				a.log.Error("cannot put the old secret back after a failed profile write", "profile", name, "error", uerr)
				err = fmt.Errorf("%w; putting the old secret back failed too, so the store holds the new one: %w", err, uerr)
			} else {
				err = fmt.Errorf("%w; the old secret was put back", err)
			}
		}
		return providers.Mark(ErrUnavailable, err)
	}
	a.mu.Lock()
	old := a.profiles.get(name)
	a.profiles.put(p)
	a.cfg.Profiles[name] = pc
	typ := EventAdded
	if old != nil {
		old.stop()
		typ = EventChanged
	}
	a.log.Info("profile defined", "profile", name, "provider", pc.Provider, "secret_stored", secret != nil)
	a.publish(typ, p.info())
	p.start()
	a.mu.Unlock()
	return nil
}

// SetSecret stores or replaces the secret of an existing profile (an API secret, a client
// secret) and leaves its definition as it is: hosts, key_id, headers and every other key
// stay, and the config file is not touched. The profile is then served afresh, from the
// same config, so the next credential is made with the new secret. Once the checks pass,
// the change runs on a context of its own (up to changeTimeout) and finishes whether or
// not the caller waits. Errors wrap ErrUnknownProfile (no such profile), ErrBadRequest (an
// empty secret, or one with a line break or another control character), ErrTooLarge (over
// MaxSecretSize) and ErrUnavailable (the secret store refused it). A profile that has
// confirm set gets a new secret only when the user allows it (OpChange); else ErrDenied.
func (a *Agent) SetSecret(ctx context.Context, name, secret string) (err error) {
	defer func() { a.audit(ctx, audit.OpSetSecret, name, nil, err) }()
	if _, err := a.lookup(name); err != nil {
		return err
	}
	if secret == "" {
		return providers.Mark(ErrBadRequest, fmt.Errorf("profile %s: the secret is empty", name))
	}
	if providers.HasControl(secret) {
		return providers.Mark(ErrBadRequest, fmt.Errorf("profile %s: the secret contains a line break or another control character; store it without them", name))
	}
	if err := CheckSecretSize(len(secret)); err != nil {
		return fmt.Errorf("profile %s: %w", name, err)
	}
	asked, err := a.confirmChange(ctx, name, OpChange) // before editMu: the user may take a while
	if err != nil {
		return err
	}
	a.editMu.Lock() // no PutProfile or DeleteProfile of the same secrets meanwhile
	defer a.editMu.Unlock()
	if err := a.changeStillAllowed(name, asked); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), changeTimeout)
	defer cancel()
	if _, err := a.lookup(name); err != nil {
		return err // a reload removed it while we waited
	}
	account := name + "/" + providers.SecretKey
	if err := a.store.Set(ctx, account, secret); err != nil {
		return providers.Mark(ErrUnavailable, fmt.Errorf("store the secret of %s: %w", name, err))
	}
	a.pendingMu.Lock()
	delete(a.pending, account) // an older value waiting to be written back must not return
	a.pendingMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.profiles.get(name)
	if old == nil {
		// A reload removed the profile after the secret was stored; a profile defined
		// again under this name finds it.
		a.log.Info("secret stored for a profile that a reload removed meanwhile", "profile", name)
		return nil
	}
	p, err := a.build(name, old.cfg)
	if err != nil { // built from the same config before; cannot fail but for a bug
		return fmt.Errorf("profile %s: the secret is stored, but the profile cannot be served afresh: %w", name, err)
	}
	old.stop()
	a.profiles.put(p)
	a.log.Info("secret stored", "profile", name)
	a.publish(EventChanged, p.info())
	p.start()
	return nil
}

// DeleteProfile removes a profile: it deletes the profile's secrets from the store, then
// its table from the config file. The change runs on a context of its own (up to
// changeTimeout) and finishes or rolls back whether or not the caller waits. Secrets go
// first: when the store refuses, the profile is kept (restarted) and the error, wrapping
// ErrUnavailable, says to try again; the other order would leave secrets that a later
// profile of the same name would pick up. A profile that has confirm set is removed only
// when the user allows it (OpRemove); else ErrDenied.
func (a *Agent) DeleteProfile(ctx context.Context, name string) (err error) {
	defer func() { a.audit(ctx, audit.OpDeleteProfile, name, nil, err) }()
	asked, err := a.confirmChange(ctx, name, OpRemove) // before editMu: the user may take a while
	if err != nil {
		return err
	}
	a.editMu.Lock()
	defer a.editMu.Unlock()
	if err := a.changeStillAllowed(name, asked); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), changeTimeout)
	defer cancel()
	a.mu.Lock()
	p := a.profiles.get(name)
	if p == nil {
		a.mu.Unlock()
		_, err := a.lookup(name)
		return err
	}
	a.mu.Unlock()
	// A file that will not take the edit (a hand edit broke another table) is found before
	// the secrets are gone, not after.
	a.fileMu.Lock()
	err = checkEditable(a.cfg.Path, a.text)
	a.fileMu.Unlock()
	if err != nil {
		return providers.Mark(ErrUnavailable, fmt.Errorf("profile %s is kept, with its secrets: %w", name, err))
	}
	a.mu.Lock()
	if a.profiles.get(name) != p {
		a.mu.Unlock()
		return providers.Mark(ErrUnavailable, fmt.Errorf("profile %s changed while it was being removed; try again", name))
	}
	// Out of service first, so that no request starts a fetch or a login that would store
	// a secret after we deleted it; the file keeps the table until the secrets are gone.
	a.profiles.remove(name)
	a.mu.Unlock()
	p.stop()
	if err := a.deleteSecrets(ctx, name); err != nil {
		a.revive(p)
		return providers.Mark(ErrUnavailable, fmt.Errorf("profile %s is kept: deleting its secrets failed, try again: %w", name, err))
	}
	a.fileMu.Lock()
	path := a.cfg.Path
	text, err := removeProfile(path, name, a.text)
	a.text = text
	if err != nil && !errors.Is(err, ErrNoSuchProfile) {
		a.fileMu.Unlock()
		a.revive(p)
		return providers.Mark(ErrUnavailable, fmt.Errorf("remove profile %s from %s (its secrets are deleted already; try again): %w", name, path, err))
	}
	a.mu.Lock()
	if q := a.profiles.get(name); q != nil {
		q.stop() // a reload brought it back meanwhile
	}
	a.profiles.remove(name)
	delete(a.cfg.Profiles, name)
	a.mu.Unlock()
	a.fileMu.Unlock()
	info := p.info()
	a.log.Info("profile removed", "profile", name)
	a.publish(EventRemoved, info)
	return nil
}

// revive serves a profile that DeleteProfile took out of service again, as a fresh copy
// (stop is final), unless a reload put another one in its place meanwhile.
func (a *Agent) revive(p *profile) {
	np, err := a.build(p.name, p.cfg)
	if err != nil { // built from the same config before; cannot fail but for a bug
		a.log.Error("cannot serve a profile again after a failed removal", "profile", p.name, "error", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.profiles.get(p.name) != nil {
		return
	}
	a.profiles.put(np)
	a.publish(EventChanged, np.info())
	np.start()
}

// Reload re-reads the config file. On any error the running profiles stay as they were.
// Profiles whose configuration did not change keep their cached credentials. A missing
// config file, or one with nothing but blank lines and comments, is such an error (it
// wraps ErrNoConfig and ErrUnavailable): an editor or a sync tool may be halfway through
// saving it. A file that does not load, or a profile its provider refuses, is an error
// wrapping ErrBadRequest that names the file, line and key. A file that holds only
// secret_store = "…" removes every profile. Status reports the error until a reload
// works (ConfigError), and a changed secret_store, which needs a restart (ConfigWarning).
// The audit log gets one entry per profile a reload adds or changes (reload_put) or
// removes (reload_delete), naming no caller (SIGHUP); see ReloadFor.
func (a *Agent) Reload() error { return a.ReloadFor(context.Background()) }

// ReloadFor is Reload asked for by the caller ctx carries (POST /v1/reload): its audit
// entries name that caller. ctx carries only values; the reload finishes whether or not
// the caller waits.
func (a *Agent) ReloadFor(ctx context.Context) error {
	put, removed, err := a.reload()
	for _, name := range put {
		a.audit(ctx, audit.OpReloadPut, name, nil, nil)
	}
	for _, name := range removed {
		a.audit(ctx, audit.OpReloadDelete, name, nil, nil)
	}
	return err
}

// reload re-reads the config file and returns the names of the profiles it added or
// changed and of those it removed, each sorted.
func (a *Agent) reload() (put, removed []string, err error) {
	a.fileMu.Lock() // PutProfile and DeleteProfile edit the file under it
	defer a.fileMu.Unlock()
	path := a.cfg.Path
	cfg, err := reloadConfig(path) // parsed before mu is taken: requests are served meanwhile
	a.mu.Lock()
	defer a.mu.Unlock()
	put, removed, err = a.reloadLocked(path, cfg, err)
	a.reloadErr = ""
	if err != nil {
		a.reloadErr = err.Error()
	}
	return put, removed, err
}

// reloadLocked applies what reloadConfig(path) returned and returns the names of the
// profiles it added or changed, and removed, each sorted; a.fileMu and a.mu are held.
func (a *Agent) reloadLocked(path string, cfg *Config, err error) (put, removed []string, _ error) {
	if errors.Is(err, ErrNoConfig) {
		kept := fmt.Sprintf("the %d profiles", a.profiles.len())
		if a.profiles.len() == 1 {
			kept = "the 1 profile"
		}
		return nil, nil, providers.Mark(ErrUnavailable, fmt.Errorf("%w; kept %s loaded before. An editor or sync tool may be saving it: "+
			"run `authagent reload` (or send SIGHUP again) once it is saved. To remove profiles, use `authagent remove NAME`, or leave "+
			"only the secret_store line in the file", err, kept))
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return nil, nil, providers.Mark(ErrBadRequest, err)
	}
	if err != nil {
		return nil, nil, providers.Mark(ErrUnavailable, err)
	}
	if storeKind(cfg.SecretStore) != storeKind(a.cfg.SecretStore) {
		a.log.Warn("secret_store changed in the config; restart the agent for it to take effect")
	}
	next := make(map[string]*profile, len(cfg.Profiles))
	var fresh []*profile
	var errs []error
	for name, pc := range cfg.Profiles {
		if old := a.profiles.get(name); old != nil && sameConfig(old.cfg, pc) {
			next[name] = old
			continue
		}
		p, err := a.build(name, pc)
		if err != nil {
			errs = append(errs, cfg.Locate(name, err))
			continue
		}
		next[name] = p
		fresh = append(fresh, p)
	}
	if len(errs) > 0 {
		return nil, nil, providers.Mark(ErrBadRequest, errors.Join(errs...))
	}
	for name, old := range a.profiles.byName {
		if next[name] != old {
			old.stop()
			if next[name] == nil {
				a.publish(EventRemoved, old.info())
				removed = append(removed, name)
			}
		}
	}
	for _, p := range fresh {
		typ := EventAdded
		if a.profiles.get(p.name) != nil {
			typ = EventChanged
		}
		a.publish(typ, p.info())
		p.start()
		put = append(put, p.name)
	}
	a.profiles = newProfileSet(next)
	a.cfg = cfg.served()
	a.text = cfg.text
	a.log.Info("config reloaded", "path", path, "profiles", len(next), "changed", len(fresh))
	sort.Strings(put)
	sort.Strings(removed)
	return put, removed, nil
}

// profileSet is the profiles an agent serves, by name, with their hosts indexed for
// ProfileForURL. The agent's mu guards it.
type profileSet struct {
	byName map[string]*profile
	hosts  hostIndex
}

func newProfileSet(ps map[string]*profile) profileSet {
	s := profileSet{byName: ps}
	if s.byName == nil {
		s.byName = map[string]*profile{}
	}
	for name, p := range ps {
		s.hosts.add(name, p.cfg.Hosts)
	}
	return s
}

func (s *profileSet) get(name string) *profile { return s.byName[name] }

func (s *profileSet) len() int { return len(s.byName) }

func (s *profileSet) all() []*profile {
	ps := make([]*profile, 0, len(s.byName))
	for _, p := range s.byName {
		ps = append(ps, p)
	}
	return ps
}

// put serves p in place of the profile of the same name, if any. A profile's hosts do
// not change while it is served (a change makes a new profile), so the index can take
// out the old one's by its config.
func (s *profileSet) put(p *profile) {
	s.remove(p.name)
	s.byName[p.name] = p
	s.hosts.add(p.name, p.cfg.Hosts)
}

func (s *profileSet) remove(name string) {
	if old := s.byName[name]; old != nil {
		s.hosts.remove(name, old.cfg.Hosts)
		delete(s.byName, name)
	}
}

// deleteSecrets deletes every secret stored under the profile name (providers.AllSecretKeys),
// under the name's grant lock, so that a refresh still in flight cannot store a rotated
// token after it. It tries every key and joins the errors of those that failed.
func (a *Agent) deleteSecrets(ctx context.Context, name string) error {
	gl := a.grantLock(name)
	gl.Lock()
	defer gl.Unlock()
	var errs []error
	for _, k := range providers.AllSecretKeys {
		if err := (secretView{a: a, prefix: name + "/"}).Delete(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
