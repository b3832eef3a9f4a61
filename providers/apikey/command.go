package apikey

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/tokencmd"
)

// Command trades the key id and the stored secret for a token with an exchange command: a
// program that speaks the server's own protocol (a broker's challenge-response, say). The
// agent keeps the secret; the command gets it, with the key id, as JSON on stdin for one
// run (tokencmd.SecretInput), and prints the token as an externaljwt command does (one
// line, {"token","expires_at"}, {"access_token","expires_in"} or an ExecCredential). The
// token goes out in headers and gRPC metadata made from templates with {token} and
// {key_id}. How the command runs (environment, process group, timeout, scrubbed stderr) is
// package tokencmd's.
type Command struct {
	profile  string
	keyID    string
	cmd      *tokencmd.Command
	lifetime time.Duration
	headers  map[string]string
	metadata map[string]string
	secrets  providers.Secrets
	now      func() time.Time

	mu        sync.Mutex
	lastToken string // the token the command printed last time it succeeded
}

// defaultCommandHeaders send the command's token as a bearer token.
var defaultCommandHeaders = map[string]string{"Authorization": "Bearer {token}"}

func newCommand(stop context.Context, cfg *providers.ProfileConfig, env providers.Env) (*Command, error) {
	if err := providers.CheckKeys(cfg, Name+" (mode "+modeCommand+")",
		"mode", "key_id", "command", "env", "dir", "timeout", "stdin", "lifetime", "headers", "metadata"); err != nil {
		return nil, err
	}
	if cfg.Command == nil {
		return nil, &providers.ConfigError{Key: "command", Message: `required: the exchange command, one word per entry, like ["/usr/local/bin/broker-login", "--server", "broker.example.com:443"]; it reads the key id and secret as JSON on stdin and prints a token`}
	}
	c := *cfg
	if c.Stdin == "" {
		c.Stdin = tokencmd.StdinSecret // the point of this mode; stdin = "secret" may say so
	}
	cmd, err := tokencmd.New(stop, &c)
	if err != nil {
		return nil, err
	}
	headers, md, err := templates(cfg, defaultCommandHeaders, "{key_id}", "{token}")
	if err != nil {
		return nil, err
	}
	p := &Command{
		profile:  env.Name,
		keyID:    cfg.KeyID,
		cmd:      cmd,
		lifetime: cfg.Lifetime.D(),
		headers:  headers,
		metadata: md,
		secrets:  env.Secrets,
		now:      env.Now,
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// Fetch reads the secret, runs the command with it on stdin and builds the credential from
// the token it prints. The expiry comes from the answer, else from the token's JWT exp
// claim (not verified), else from lifetime; else there is none and the token is used until
// a server refuses it. No secret stored needs the user (ErrNeedsLogin); a failed command is
// retried with backoff.
func (p *Command) Fetch(ctx context.Context) (*providers.Credential, error) {
	secret, err := p.secrets.Get(ctx, providers.SecretKey)
	if errors.Is(err, providers.ErrSecretNotFound) {
		return nil, providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("no API secret stored for the exchange command; store it with `authagent set-secret %s` (reads it from stdin)", p.profile))
	}
	if err != nil {
		return nil, fmt.Errorf("read API secret: %w", err)
	}
	out, err := p.cmd.Run(ctx, tokencmd.SecretInput(p.profile, p.keyID, secret), func(out []byte) ([]string, error) {
		known := []string{secret}
		p.mu.Lock()
		known = append(known, p.lastToken)
		p.mu.Unlock()
		if a, err := tokencmd.ParseAnswer(out, p.now(), "output"); err == nil {
			known = append(known, a.Token)
		}
		return known, nil
	})
	if err != nil {
		return nil, err
	}
	now := p.now()
	a, err := tokencmd.ParseAnswer(out, now, "output")
	if err != nil {
		return nil, fmt.Errorf("command %q: %w", p.cmd.Name(), err)
	}
	if a.Token == secret {
		// A command that echoes its input would put the secret in headers meant for a token.
		return nil, fmt.Errorf("command %q printed the profile's secret instead of a token; it must print the token the server issued", p.cmd.Name())
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
		return nil, fmt.Errorf("the token from command %q: %w", p.cmd.Name(), err)
	}
	p.mu.Lock()
	p.lastToken = a.Token
	p.mu.Unlock()
	r := strings.NewReplacer("{token}", a.Token, "{key_id}", p.keyID)
	tokenType := "api-key"
	if p.headers["Authorization"] == "Bearer {token}" {
		tokenType = "Bearer"
	}
	return &providers.Credential{
		TokenType: tokenType,
		Token:     a.Token,
		ExpiresAt: exp,
		Headers:   fill(p.headers, r),
		Metadata:  fill(p.metadata, r),
	}, nil
}
