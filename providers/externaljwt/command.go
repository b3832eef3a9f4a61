package externaljwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/tokencmd"
)

// run runs the command (see tokencmd.Command.Run) and returns what it printed. With stdin =
// "secret" it reads the profile's secret first and hands it to the command on stdin, and
// returns it too ("" otherwise); a profile without one needs the user to store it.
func (p *Provider) run(ctx context.Context) (out []byte, secret string, err error) {
	var stdin []byte
	if p.cmd.WantsSecret() {
		secret, err = p.secrets.Get(ctx, providers.SecretKey)
		if errors.Is(err, providers.ErrSecretNotFound) {
			return nil, "", providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("no secret stored for command %q (stdin = \"secret\"); store it with `authagent set-secret %s` (reads it from stdin)", p.cmd.Name(), p.name))
		}
		if err != nil {
			return nil, "", fmt.Errorf("read the secret for command %q: %w", p.cmd.Name(), err)
		}
		stdin = tokencmd.SecretInput(p.name, p.keyID, secret)
	}
	out, err = p.cmd.Run(ctx, stdin, func(out []byte) ([]string, error) { return p.knownSecrets(ctx, out) })
	return out, secret, err
}

// knownSecrets are the values this profile knows to be secret, to be scrubbed from the
// command's stderr whatever their length: the profile's stored secret and pushed token, the
// last token the command printed and the token in out (what it printed this time). (The
// command adds the values of the profile's env.) It fails when the secret store cannot say
// what it holds.
func (p *Provider) knownSecrets(ctx context.Context, out []byte) ([]string, error) {
	var known []string
	for _, key := range []string{providers.SecretKey, providers.PushedTokenKey} {
		v, err := p.secrets.Get(ctx, key)
		if errors.Is(err, providers.ErrSecretNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", key, err)
		}
		known = append(known, v)
		var st providers.PushedToken
		if key == providers.PushedTokenKey && json.Unmarshal([]byte(v), &st) == nil {
			known = append(known, st.Token)
		}
	}
	p.mu.Lock()
	known = append(known, p.lastToken)
	p.mu.Unlock()
	if a, err := tokencmd.ParseAnswer(out, p.now(), "output"); err == nil {
		known = append(known, a.Token)
	}
	return known, nil
}
