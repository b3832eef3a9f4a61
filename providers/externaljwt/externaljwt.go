// Package externaljwt is the provider for bearer tokens that another program manages. A
// profile takes its token from one source: a command it runs (stdout holds a raw token,
// {"token","expires_at"} JSON, or a Kubernetes ExecCredential; with stdin = "secret" the
// command reads the profile's secret and key id as JSON on stdin, so that a program can
// trade a secret the agent keeps for a token), a file it re-reads and
// watches for rotation, or tokens pushed into the agent (`authagent set-token`), which it
// keeps in the secret store so they survive a restart.
//
// The expiry comes from the answer; else from the JWT's exp claim, which is decoded but NOT
// verified (it only decides when to fetch again); else from the configured lifetime; else
// there is none and the token is used until a server rejects it. When jwks_url is set, the
// token's signature is verified against that key set and a token that fails is refused.
//
// A command runs as package tokencmd runs every command: in a process group of its own that
// is killed whole when its fetch is cancelled or times out, when the agent stops
// (NewFactory), and when the agent dies however it dies. A failed command's stderr goes into
// the error scrubbed of the profile's own secrets and of anything shaped like a token.
//
// The package does not decide when to fetch again (that is the agent's refresh policy), and
// it never mints, refreshes or revokes tokens itself.
package externaljwt

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/tokencmd"
)

// Name is the provider name used in the config.
const Name = "externaljwt"

// DefaultTimeout bounds a command run when the profile sets no timeout.
const DefaultTimeout = tokencmd.DefaultTimeout

type source int

const (
	sourcePush source = iota
	sourceCommand
	sourceFile
)

// Provider serves the token of one externaljwt profile.
type Provider struct {
	name     string
	src      source
	cmd      *tokencmd.Command // sourceCommand only
	keyID    string            // goes to a command with stdin = "secret"
	file     string
	lifetime time.Duration
	jwksURL  string
	keys     *oidc.RemoteKeySet // nil unless jwks_url is set
	secrets  providers.Secrets
	now      func() time.Time
	log      *slog.Logger
	stop     context.Context // ends when the agent stops; commands are killed then

	mu        sync.Mutex
	read      bool     // Fetch has read the token file at least once
	lastSum   [32]byte // the token file's content as Fetch last read it or Watch last reported it
	lastToken string   // the token the command printed last time it succeeded
}

var (
	_ providers.Provider = (*Provider)(nil)
	_ providers.Pusher   = (*Provider)(nil)
)

// New is the providers.Factory for externaljwt profiles. A profile sets command or file;
// with neither, it takes pushed tokens. A command runs until its fetch's context ends or its
// timeout passes; an agent uses NewFactory instead.
func New(cfg *providers.ProfileConfig, env providers.Env) (providers.Provider, error) {
	return build(context.Background(), cfg, env)
}

// NewFactory is New for an agent that stops when stop ends. From then on a command in flight
// is killed at once (its fetch fails with an error saying the agent is stopping) and none is
// started, so the agent's shutdown does not wait for a command, which unlike a refresh that
// rotated a token has nothing to save.
func NewFactory(stop context.Context) providers.Factory {
	return func(cfg *providers.ProfileConfig, env providers.Env) (providers.Provider, error) {
		return build(stop, cfg, env)
	}
}

func build(stop context.Context, cfg *providers.ProfileConfig, env providers.Env) (providers.Provider, error) {
	if err := providers.CheckKeys(cfg, Name, "command", "env", "dir", "timeout", "file", "lifetime", "jwks_url", "stdin", "key_id"); err != nil {
		return nil, err
	}
	p := &Provider{
		name:     env.Name,
		lifetime: cfg.Lifetime.D(),
		secrets:  env.Secrets,
		now:      env.Now,
		log:      env.Logger,
		stop:     stop,
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Command != nil && cfg.File != "":
		return nil, &providers.ConfigError{Key: "file", Message: "set either command or file, not both (with neither, tokens are pushed with `authagent set-token`)"}
	case cfg.Command != nil:
		cmd, err := tokencmd.New(stop, cfg)
		if err != nil {
			return nil, err
		}
		if cfg.KeyID != "" && !cmd.WantsSecret() {
			return nil, &providers.ConfigError{Key: "key_id", Message: `used only with stdin = "secret": it goes to the command with the secret; remove it`}
		}
		p.src, p.cmd, p.keyID = sourceCommand, cmd, cfg.KeyID
	case cfg.File != "":
		if strings.ContainsRune(cfg.File, 0) {
			return nil, &providers.ConfigError{Key: "file", Message: "contains a NUL byte, which no file name can hold; remove it"}
		}
		if !filepath.IsAbs(cfg.File) {
			return nil, &providers.ConfigError{Key: "file", Message: fmt.Sprintf("%q is not an absolute path (~ is not expanded)", cfg.File)}
		}
		p.src = sourceFile
		p.file = filepath.Clean(cfg.File)
	}
	if p.src != sourceCommand {
		for _, k := range []struct {
			key string
			set bool
		}{{"env", len(cfg.Env) > 0}, {"dir", cfg.Dir != ""}, {"timeout", cfg.Timeout != 0}, {"stdin", cfg.Stdin != ""}, {"key_id", cfg.KeyID != ""}} {
			if k.set {
				return nil, &providers.ConfigError{Key: k.key, Message: "used only with command; remove it"}
			}
		}
	}
	if cfg.JWKSURL != "" {
		if err := providers.CheckEndpoint(cfg.JWKSURL); err != nil {
			return nil, &providers.ConfigError{Key: "jwks_url", Message: err.Error()}
		}
		hc := env.HTTPClient
		if hc == nil {
			hc = http.DefaultClient
		}
		p.jwksURL = cfg.JWKSURL
		// The context only carries the HTTP client: go-oidc keeps it for background key fetches.
		p.keys = oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), hc), cfg.JWKSURL)
	}
	return p, nil
}

// Fetch runs the command, reads the file, or returns the pushed token. It returns an error
// wrapping providers.ErrNeedsLogin only in push mode, when no usable token was pushed.
// Local reports whether a fetch stays on this machine without running a command: a token
// file or a pushed token, unless jwks_url makes checking it fetch keys.
func (p *Provider) Local() bool { return p.src != sourceCommand && p.keys == nil }

func (p *Provider) Fetch(ctx context.Context) (*providers.Credential, error) {
	switch p.src {
	case sourceCommand:
		return p.fetchCommand(ctx)
	case sourceFile:
		return p.fetchFile(ctx)
	}
	return p.fetchPushed(ctx)
}

func (p *Provider) fetchCommand(ctx context.Context) (*providers.Credential, error) {
	out, secret, err := p.run(ctx)
	if err != nil {
		return nil, err
	}
	now := p.now()
	a, err := tokencmd.ParseAnswer(out, now, "output")
	if err != nil {
		return nil, fmt.Errorf("command %q: %w", p.cmd.Name(), err)
	}
	if secret != "" && a.Token == secret {
		// A command that echoes its input would have the secret served as a token.
		return nil, fmt.Errorf("command %q printed the profile's secret instead of a token; it must print the token the server issued", p.cmd.Name())
	}
	cred, err := p.accept(ctx, a, now, fmt.Sprintf("the token from command %q", p.cmd.Name()))
	if err == nil {
		p.mu.Lock()
		p.lastToken = cred.Token
		p.mu.Unlock()
	}
	return cred, err
}

func (p *Provider) fetchFile(ctx context.Context) (*providers.Credential, error) {
	b, err := tokencmd.ReadFile(p.file)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.read, p.lastSum = true, sha256.Sum256(b)
	p.mu.Unlock()
	now := p.now()
	a, err := tokencmd.ParseAnswer(b, now, "content")
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", p.file, err)
	}
	return p.accept(ctx, a, now, "the token in file "+p.file)
}

func (p *Provider) fetchPushed(ctx context.Context) (*providers.Credential, error) {
	raw, err := p.secrets.Get(ctx, providers.PushedTokenKey)
	if errors.Is(err, providers.ErrSecretNotFound) {
		return nil, providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("no token pushed yet; push one with `authagent set-token %s`", p.name))
	}
	if err != nil {
		return nil, fmt.Errorf("read pushed token: %w", err)
	}
	var st providers.PushedToken
	if err := json.Unmarshal([]byte(raw), &st); err != nil || st.Token == "" {
		return nil, providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("the stored pushed token is unreadable; push a new one with `authagent set-token %s`", p.name))
	}
	var exp time.Time
	if st.ExpiresAt != nil {
		exp = st.ExpiresAt.UTC()
	}
	if !exp.IsZero() && !p.now().Before(exp) {
		return nil, providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("the pushed token expired at %s; push a new one with `authagent set-token %s`", exp.Format(time.RFC3339), p.name))
	}
	if err := p.verify(ctx, st.Token, "the pushed token"); err != nil {
		return nil, err
	}
	return providers.TokenCredential("Bearer", st.Token, exp), nil
}

// Push checks a token handed to the agent and stores it, so that it survives a restart.
// expiresAt may be zero; the expiry is then found as for any other answer. Push is refused
// for profiles that take their token from a command or a file.
func (p *Provider) Push(ctx context.Context, token string, expiresAt time.Time) (*providers.Credential, error) {
	if p.src != sourcePush {
		from := "command"
		if p.src == sourceFile {
			from = "file"
		}
		return nil, fmt.Errorf("profile %s takes its token from its %s; only profiles without command and file accept pushed tokens", p.name, from)
	}
	token = strings.TrimSpace(token)
	if err := tokencmd.CheckToken(token); err != nil {
		return nil, fmt.Errorf("the pushed token %w", err)
	}
	now := p.now()
	cred, err := p.accept(ctx, tokencmd.Answer{Token: token, ExpiresAt: expiresAt}, now, "the pushed token")
	if err != nil {
		return nil, err
	}
	st := providers.PushedToken{Token: token}
	if !cred.ExpiresAt.IsZero() {
		st.ExpiresAt = &cred.ExpiresAt
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode pushed token: %w", err)
	}
	if err := p.secrets.Set(ctx, providers.PushedTokenKey, string(b)); err != nil {
		return nil, providers.Mark(providers.ErrSecretStore, fmt.Errorf("store pushed token: %w", err))
	}
	return cred, nil
}

// accept verifies a token that came from a command, a file or a push, settles its expiry
// and refuses it when it has already expired. what names the token in error messages, as in
// `the token from command "vault"`; no message contains the token.
func (p *Provider) accept(ctx context.Context, a tokencmd.Answer, now time.Time, what string) (*providers.Credential, error) {
	if err := p.verify(ctx, a.Token, what); err != nil {
		return nil, err
	}
	exp := a.ExpiresAt
	if exp.IsZero() {
		exp, _ = providers.JWTExpiry(a.Token)
	}
	if exp.IsZero() && p.lifetime > 0 {
		exp = now.Round(0).Add(p.lifetime) // wall clock: time asleep counts
	}
	exp = exp.UTC()
	if err := providers.CheckArrival(exp, now, nil); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return providers.TokenCredential("Bearer", a.Token, exp), nil
}

// verify checks the token's signature against jwks_url, when one is set. what names the
// token in the error.
func (p *Provider) verify(ctx context.Context, token, what string) error {
	if p.keys == nil {
		return nil
	}
	if strings.Count(token, ".") != 2 {
		return fmt.Errorf("%s is not a JWT, but jwks_url is set, so it must be one signed by a key in %s", what, p.jwksURL)
	}
	// VerifySignature parses with asymmetric algorithms only (no "none", no HMAC), which is
	// the check go-oidc's ID token verifier would add; the claims are not ID token claims.
	if _, err := p.keys.VerifySignature(ctx, token); err != nil {
		return fmt.Errorf("%s does not verify against jwks_url %s: %v", what, p.jwksURL, err)
	}
	return nil
}
