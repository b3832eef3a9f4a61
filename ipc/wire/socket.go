package wire

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ClientIdle is how long the agent keeps a connection that sends nothing, kept-alive ones
// between requests included; clients drop theirs a second sooner.
const ClientIdle = 5 * time.Second

// DefaultSocketPath is where the agent listens and clients connect: $AUTHAGENT_SOCK, else
// $XDG_RUNTIME_DIR/authagent/agent.sock, else the OS's per-user place (socketDir):
// /tmp/authagent-$UID/agent.sock on Linux and the BSDs, ~/Library/Application
// Support/authagent/agent.sock on macOS, %LOCALAPPDATA%\authagent\agent.sock on Windows.
func DefaultSocketPath() string {
	if p := os.Getenv("AUTHAGENT_SOCK"); p != "" {
		return p
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "authagent", "agent.sock")
	}
	return filepath.Join(socketDir(), "agent.sock")
}

// tempSocketDir is $TMPDIR/authagent-$UID (/tmp when TMPDIR is unset).
func tempSocketDir() string {
	return filepath.Join(os.TempDir(), "authagent-"+strconv.Itoa(os.Getuid()))
}

// SocketPath is the socket a program uses: given (its --socket flag) when set, else
// DefaultSocketPath(); made absolute, so that it names the same socket from any directory
// (it goes into AUTHAGENT_SOCK, a spawned agent's flags and systemd units).
func SocketPath(given string) string {
	if given == "" {
		given = DefaultSocketPath()
	}
	if abs, err := filepath.Abs(given); err == nil {
		return abs
	}
	return given
}

// ErrNoAgent means nothing answers on the socket.
var ErrNoAgent = errors.New("no agent is running")

// ConnError is what a client reports when talking to the agent at sock failed with err:
// err itself when the client refused the socket (it says why and what to do), an error
// wrapping ErrNoAgent that says how to start one when nothing answers, and err with the
// socket named otherwise.
func ConnError(sock string, err error) error {
	if IsUntrustedServer(err) {
		return err
	}
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Op == "dial" {
		return fmt.Errorf("%w at %s: start one with `eval \"$(authagent start)\"` (or `authagent serve`), or set AUTHAGENT_SOCK: %w", ErrNoAgent, sock, err)
	}
	return fmt.Errorf("talk to agent at %s: %w", sock, err)
}

// ProfilePath is the path of a profile's endpoint: "/v1/profiles/NAME" and then sub
// ("/credential", "/reject", or "" for the profile itself), with NAME escaped.
func ProfilePath(name, sub string) string {
	return "/v1/profiles/" + url.PathEscape(name) + sub
}

// CredentialOption tunes a credential request.
type CredentialOption func(url.Values)

// MinValid asks for a credential valid at least d longer; the agent refreshes first if
// less is left.
func MinValid(d time.Duration) CredentialOption {
	return func(q url.Values) { q.Set("min_valid", strconv.Itoa(int(d/time.Second))) }
}

// ForURL asks the agent to check that the profile may send its token to target.
func ForURL(target string) CredentialOption {
	return func(q url.Values) { q.Set("url", target) }
}

// IDToken asks for the profile's OpenID Connect ID token instead of its access token
// (token=id_token): the credential's token is the ID token, its expires_at the token's
// exp. Errors: *Error with code bad_request for a profile that has no ID tokens,
// needs_login when it has none now.
func IDToken() CredentialOption {
	return func(q url.Values) { q.Set("token", TokenID) }
}

// KubeToken asks for the token kube-credential hands kubectl (token=kube): the ID token
// when the profile's kube_token says so, else the access token.
func KubeToken() CredentialOption {
	return func(q url.Values) { q.Set("token", TokenKube) }
}

// CredentialQuery applies opts to a credential request's query.
func CredentialQuery(opts ...CredentialOption) url.Values {
	q := url.Values{}
	for _, o := range opts {
		o(q)
	}
	return q
}
