package credhelper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/authagent/authagent/ipc/wire"
)

// Agent is what the helpers need of the agent. *ipc.Client and the one-shot client
// (*oneshot.Client) are the real ones; tests use a fake.
type Agent interface {
	Credential(ctx context.Context, profile string, opts ...wire.CredentialOption) (*wire.Credential, error)
	CredentialForURL(ctx context.Context, target string, opts ...wire.CredentialOption) (*wire.Credential, error)
	Profile(ctx context.Context, name string) (*wire.Profile, error)
	Profiles(ctx context.Context) ([]wire.Profile, error)
	Reject(ctx context.Context, profile string) error
}

// ExitError means a helper has already answered its caller the protocol's way (Docker
// reads a failure from stdout): the process exits with Code and prints nothing more.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Git answers one request of git's credential helper protocol.
type Git struct {
	Agent  Agent
	Stderr io.Writer // what git shows the user
}

// GitInput is one run of the helper: git's operation (get, store, erase), the request on
// In and the answer to Out.
type GitInput struct {
	Op  string
	In  io.Reader
	Out io.Writer
}

// Do answers a git request. It never fails git: with no agent, no profile for the host,
// or a profile that needs a login, it says so on Stderr at most and prints nothing, so git
// goes on to its next helper or asks the user. A socket that another user serves is an
// error (git goes on all the same), so scripts notice. erase (git's "the server refused
// this token") drops the agent's cached token only if it is the one git was refused: a
// newer token the agent has moved on to is kept.
func (g *Git) Do(ctx context.Context, in GitInput) error {
	req, err := ReadGitRequest(in.In)
	if err != nil {
		return err
	}
	if in.Op != "get" && in.Op != "erase" {
		return nil // store: the agent owns the token; unknown operations are ignored
	}
	if req.Protocol != "https" && req.Protocol != "http" {
		return nil
	}
	cred, err := g.Agent.CredentialForURL(ctx, req.URL())
	switch {
	case wire.IsCode(err, wire.CodeNoProfile):
		return nil
	case wire.IsUntrustedServer(err):
		return err
	case err != nil:
		if in.Op == "get" {
			fmt.Fprintln(g.Stderr, "authagent:", OneLine(err.Error()))
		}
		return nil
	}
	if in.Op == "erase" {
		if refused := req.Refused(); refused != "" && refused != cred.Token {
			return nil // the agent moved on to a newer token already; keep that one
		}
		if err := g.Agent.Reject(ctx, cred.Profile); err != nil {
			fmt.Fprintln(g.Stderr, "authagent:", OneLine(err.Error()))
		}
		return nil
	}
	a := GitAnswer{Username: cred.Username, Token: cred.Token, TokenType: cred.TokenType, ExpiresAt: ExpiresOf(cred)}
	return WriteGitAnswer(in.Out, req, a)
}

// Docker answers one request of the Docker credential helper protocol.
type Docker struct {
	Agent Agent
}

// DockerInput is one run of the helper: Docker's operation (get, store, erase, list), its
// request on In (at most 1 MiB read) and the answer to Out.
type DockerInput struct {
	Op  string
	In  io.Reader
	Out io.Writer
}

// Do answers a Docker request. get: the credential of the profile for the server; a
// server no profile covers, or no agent, is "credentials not found" (so Docker goes on
// without, and public images still pull), other failures are one line; both on Out, with
// an *ExitError. erase drops the agent's cached token. store keeps nothing: the agent
// owns these credentials. list names every plain host of every profile.
func (d *Docker) Do(ctx context.Context, in DockerInput) error {
	raw, err := io.ReadAll(io.LimitReader(in.In, 1<<20))
	if err != nil {
		return err
	}
	switch in.Op {
	case "get", "erase":
		server := strings.TrimSpace(string(raw))
		cred, err := d.Agent.CredentialForURL(ctx, DockerServerURL(server))
		if err != nil && (errors.Is(err, wire.ErrNoAgent) || wire.IsCode(err, wire.CodeNoProfile)) {
			if in.Op == "erase" {
				return nil
			}
			fmt.Fprintln(in.Out, DockerNotFound)
			return &ExitError{Code: 1}
		}
		if err != nil {
			fmt.Fprintln(in.Out, OneLine(err.Error())) // Docker shows the helper's stdout, not its stderr
			return &ExitError{Code: 1}
		}
		if in.Op == "erase" {
			return d.Agent.Reject(ctx, cred.Profile)
		}
		return json.NewEncoder(in.Out).Encode(DockerCredential{ServerURL: server, Username: cred.Username, Secret: cred.Token})
	case "store":
		return nil // the agent owns these credentials; docker login's copy is not kept
	case "list":
		ps, err := d.Agent.Profiles(ctx)
		if err != nil {
			return err
		}
		out := map[string]string{}
		for _, p := range ps {
			for _, h := range p.Hosts {
				if !strings.Contains(h, "*") {
					out["https://"+h] = p.Username
				}
			}
		}
		return json.NewEncoder(in.Out).Encode(out)
	}
	return fmt.Errorf("unknown operation %q: want get, store, erase or list", in.Op)
}

// Bazel answers a `get` of the Bazel credential helper spec.
type Bazel struct {
	Agent Agent
}

// BazelInput is one run of the helper: the request on In, the answer to Out.
type BazelInput struct {
	In  io.Reader
	Out io.Writer
}

// Do writes the headers of the profile for the request's URI, and when they expire; a URI
// no profile covers gets empty headers.
func (b *Bazel) Do(ctx context.Context, in BazelInput) error {
	req, err := ReadBazelRequest(in.In)
	if err != nil {
		return err
	}
	cred, err := b.Agent.CredentialForURL(ctx, req.URI)
	if wire.IsCode(err, wire.CodeNoProfile) {
		return json.NewEncoder(in.Out).Encode(BazelResponse{Headers: map[string][]string{}})
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(in.Out).Encode(NewBazelResponse(cred.Headers, ExpiresOf(cred)))
}

// Kube answers kubectl's exec credential plugin call for a profile.
type Kube struct {
	Agent Agent
	// Login logs the profile in, with its prompts on stderr; it runs when kubectl says the
	// session is interactive and the profile needs a login.
	Login func(ctx context.Context, profile string) error
}

// KubeInput is one call: the profile, KUBERNETES_EXEC_INFO as kubectl set it, and where the
// ExecCredential goes.
type KubeInput struct {
	Profile  string
	ExecInfo string
	Out      io.Writer
}

// Do writes the profile's token as an ExecCredential in the apiVersion kubectl asked
// for: the access token, or the ID token when the profile's kube_token says so (one call:
// token=kube; an agent from before token=kube is asked for the profile first). With
// provideClusterInfo the agent checks that the cluster's server is one of the profile's
// hosts. A profile that needs a login is logged in first when the session is interactive;
// otherwise its *wire.Error (needs_login) is returned.
func (k *Kube) Do(ctx context.Context, in KubeInput) error {
	info, err := ParseExecInfo(in.ExecInfo)
	if err != nil {
		return err
	}
	var opts []wire.CredentialOption
	if info.Spec.Cluster != nil && info.Spec.Cluster.Server != "" {
		opts = append(opts, wire.ForURL(info.Spec.Cluster.Server)) // the token goes only to the profile's hosts
	}
	get := func() (*wire.Credential, error) {
		cred, err := k.Agent.Credential(ctx, in.Profile, append(opts, wire.KubeToken())...)
		if !wire.IsCode(err, wire.CodeBadRequest) || !strings.Contains(err.Error(), `got "kube"`) {
			return cred, err
		}
		p, err := k.Agent.Profile(ctx, in.Profile) // an agent that predates token=kube
		if err != nil {
			return nil, err
		}
		if p.KubeToken == wire.TokenID {
			return k.Agent.Credential(ctx, in.Profile, append(opts, wire.IDToken())...)
		}
		return k.Agent.Credential(ctx, in.Profile, opts...)
	}
	cred, err := get()
	if wire.IsCode(err, wire.CodeNeedsLogin) && info.Spec.Interactive && k.Login != nil {
		if err := k.Login(ctx, in.Profile); err != nil {
			return err
		}
		cred, err = get()
	}
	if err != nil {
		return err
	}
	return WriteExecCredential(in.Out, info.APIVersion, cred.Token, ExpiresOf(cred))
}

// ExpiresOf is a credential's expiry, zero when it has none.
func ExpiresOf(c *wire.Credential) time.Time {
	if c.ExpiresAt == nil {
		return time.Time{}
	}
	return *c.ExpiresAt
}

// OneLine is the first line of s: what fits a helper's one-line report.
func OneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// Token prints a profile's current token for a script (`authagent token`).
type Token struct {
	Agent Agent
}

// TokenInput names the profile and what to print: its access token, or with IDToken its
// OpenID Connect ID token; MinValid > 0 asks for one valid at least that much longer.
type TokenInput struct {
	Profile  string
	MinValid time.Duration
	IDToken  bool
	Out      io.Writer
}

// Do writes the token and a newline to Out. Errors are the agent's (*wire.Error).
func (u *Token) Do(ctx context.Context, in TokenInput) error {
	opts := minValid(in.MinValid)
	if in.IDToken {
		opts = append(opts, wire.IDToken())
	}
	cred, err := u.Agent.Credential(ctx, in.Profile, opts...)
	if err != nil {
		return err
	}
	_, err = io.WriteString(in.Out, cred.Token+"\n")
	return err
}

// Header prints a profile's current HTTP headers for curl -H @- (`authagent header`).
type Header struct {
	Agent Agent
}

// HeaderInput names the profile; MinValid > 0 asks for a credential valid at least that
// much longer.
type HeaderInput struct {
	Profile  string
	MinValid time.Duration
	Out      io.Writer
}

// Do writes the headers as sorted "Name: value" lines to Out.
func (u *Header) Do(ctx context.Context, in HeaderInput) error {
	cred, err := u.Agent.Credential(ctx, in.Profile, minValid(in.MinValid)...)
	if err != nil {
		return err
	}
	lines, err := HeaderLines(cred.Headers)
	if err != nil {
		return err
	}
	_, err = io.WriteString(in.Out, lines)
	return err
}

// minValid is the credential option for a --min-valid flag: none when d is not positive.
func minValid(d time.Duration) []wire.CredentialOption {
	if d > 0 {
		return []wire.CredentialOption{wire.MinValid(d)}
	}
	return nil
}
