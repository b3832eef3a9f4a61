package ipc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// ErrNoAgent means nothing answers on the socket.
var ErrNoAgent = errors.New("no agent is running")

// Client talks to the agent. Its zero value finds the socket by itself
// (DefaultSocketPath); set Socket or Dial to point it elsewhere. It is safe for concurrent
// use and keeps connections alive; do not copy it after first use.
//
// Before it writes anything on a new connection, the client checks that the agent is the
// user's own: the socket's directory must belong to this user (or root), and the process
// listening on the socket must run as this user (SO_PEERCRED). Otherwise the request fails
// with an *UntrustedServerError (see IsUntrustedServer) and nothing is sent.
type Client struct {
	Socket string // default: DefaultSocketPath()
	// Dial opens a connection to addr (the Socket path). It must return a Unix socket
	// connection: its server is checked as the default dialer's is, but not the directory.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error) // default: a net.Dialer on Socket

	once  sync.Once
	pool  *connPool
	check serverCheck
}

func (c *Client) socket() string {
	if c.Socket != "" {
		return c.Socket
	}
	return DefaultSocketPath()
}

func (c *Client) conns() *connPool {
	c.once.Do(func() {
		sock := c.socket()
		dial := c.Dial
		if dial == nil {
			var d net.Dialer
			dial = d.DialContext
		}
		ownDialer := c.Dial == nil
		c.pool = &connPool{dial: func(ctx context.Context) (net.Conn, error) {
			if ownDialer {
				if err := c.check.directory(sock); err != nil {
					return nil, err
				}
			}
			conn, err := dial(ctx, "unix", sock)
			if err != nil {
				return nil, err
			}
			if err := c.check.server(sock, conn); err != nil {
				conn.Close()
				return nil, err
			}
			return conn, nil
		}}
	})
	return c.pool
}

// CloseIdleConnections closes the connections the client keeps for later requests.
func (c *Client) CloseIdleConnections() { c.conns().closeIdle() }

// do sends one request; a non-2xx answer becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := "http://authagent" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.conns().roundTrip(req, false)
	if err != nil {
		return c.connError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("read agent answer to %s %s: %w", method, path, err)
	}
	return nil
}

func (c *Client) connError(err error) error {
	if IsUntrustedServer(err) {
		return err // it names the socket and says what to do
	}
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Op == "dial" {
		return fmt.Errorf("%w at %s: start one with `eval \"$(authagent start)\"` (or `authagent serve`), or set AUTHAGENT_SOCK: %w", ErrNoAgent, c.socket(), err)
	}
	return fmt.Errorf("talk to agent at %s: %w", c.socket(), err)
}

func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		eb.Error.Status = resp.StatusCode
		return eb.Error
	}
	return &Error{Status: resp.StatusCode, Code: CodeInternal,
		Message: fmt.Sprintf("agent answered %s", resp.Status)}
}

// Status describes the agent.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.do(ctx, http.MethodGet, "/v1/status", nil, nil, &s)
}

// Profiles lists every profile.
func (c *Client) Profiles(ctx context.Context) ([]Profile, error) {
	var out struct {
		Profiles []Profile `json:"profiles"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/profiles", nil, nil, &out)
	return out.Profiles, err
}

// ProfileForURL describes the profile whose hosts match target; an *Error with code
// no_profile when none does.
func (c *Client) ProfileForURL(ctx context.Context, target string) (*Profile, error) {
	var out struct {
		Profiles []Profile `json:"profiles"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/profiles", url.Values{"url": {target}}, nil, &out); err != nil {
		return nil, err
	}
	if len(out.Profiles) != 1 {
		return nil, fmt.Errorf("agent answered %d profiles for one URL", len(out.Profiles))
	}
	return &out.Profiles[0], nil
}

// Profile describes one profile.
func (c *Client) Profile(ctx context.Context, name string) (*Profile, error) {
	var p Profile
	return &p, c.do(ctx, http.MethodGet, "/v1/profiles/"+url.PathEscape(name), nil, nil, &p)
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

// Credential returns a profile's current credential.
func (c *Client) Credential(ctx context.Context, profile string, opts ...CredentialOption) (*Credential, error) {
	q := url.Values{}
	for _, o := range opts {
		o(q)
	}
	var cr Credential
	return &cr, c.do(ctx, http.MethodGet, "/v1/profiles/"+url.PathEscape(profile)+"/credential", q, nil, &cr)
}

// CredentialForURL returns the credential of the profile whose hosts match target's host.
func (c *Client) CredentialForURL(ctx context.Context, target string, opts ...CredentialOption) (*Credential, error) {
	q := url.Values{}
	for _, o := range opts {
		o(q)
	}
	q.Set("url", target)
	var cr Credential
	return &cr, c.do(ctx, http.MethodGet, "/v1/credential", q, nil, &cr)
}

// Reject tells the agent a server refused the profile's token, so the next request gets
// a fresh one.
func (c *Client) Reject(ctx context.Context, profile string) error {
	return c.do(ctx, http.MethodPost, "/v1/profiles/"+url.PathEscape(profile)+"/reject", nil, nil, nil)
}

// PutProfile defines or replaces a profile; spec.Secret, when set, goes to the secret store.
func (c *Client) PutProfile(ctx context.Context, name string, spec ProfileSpec) error {
	return c.do(ctx, http.MethodPut, "/v1/profiles/"+url.PathEscape(name), nil, spec, nil)
}

// SetSecret stores or replaces a profile's secret and changes nothing else of the profile
// (hosts, key_id, headers stay). Errors: *Error with code unknown_profile (404),
// bad_request (400: empty, or a control character), too_large (413: over 64 KiB) or
// unavailable (503: the secret store refused).
func (c *Client) SetSecret(ctx context.Context, name, secret string) error {
	return c.do(ctx, http.MethodPut, "/v1/profiles/"+url.PathEscape(name)+"/secret", nil, SecretPut{Secret: secret}, nil)
}

// Reload makes the agent read its config file again. A file that does not load is an
// *Error with code bad_request (400) whose message names the file, line and key; a file
// that is missing, empty or unreadable is unavailable (503). Either way the agent keeps
// the config it had and reports the error in Status.ConfigError until a reload works.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/reload", nil, nil, nil)
}

// Stop asks the agent to exit cleanly and returns its pid; the agent stops after it has
// answered. An agent that cannot be stopped over its socket answers unavailable (503).
func (c *Client) Stop(ctx context.Context) (pid int, err error) {
	var s Stopping
	err = c.do(ctx, http.MethodPost, "/v1/stop", nil, nil, &s)
	return s.PID, err
}

// DeleteProfile removes a profile and its secrets.
func (c *Client) DeleteProfile(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/profiles/"+url.PathEscape(name), nil, nil, nil)
}

// LoginOption tunes a login request.
type LoginOption func(*LoginRequest)

// Flow asks for a login flow: FlowBrowser or FlowDevice. Without it the profile's login
// key decides.
func Flow(flow string) LoginOption { return func(r *LoginRequest) { r.Flow = flow } }

// Display tells the agent whether the caller can open a browser on the agent's machine,
// so that a profile with login = "auto" takes the browser flow.
func Display(can bool) LoginOption { return func(r *LoginRequest) { r.Display = can } }

// Login starts a login in the agent and returns what the user must do: the challenge's
// Flow says whether to enter a code (device) or open AuthURL (browser). Follow its
// progress with Watch or Profile; the login goes on in the agent when this returns.
func (c *Client) Login(ctx context.Context, profile string, opts ...LoginOption) (*LoginChallenge, error) {
	var body any
	if len(opts) > 0 {
		var lr LoginRequest
		for _, o := range opts {
			o(&lr)
		}
		body = lr
	}
	var lc LoginChallenge
	return &lc, c.do(ctx, http.MethodPost, "/v1/profiles/"+url.PathEscape(profile)+"/login", nil, body, &lc)
}

// CancelLogin stops a login in progress.
func (c *Client) CancelLogin(ctx context.Context, profile string) error {
	return c.do(ctx, http.MethodDelete, "/v1/profiles/"+url.PathEscape(profile)+"/login", nil, nil, nil)
}

// Logout revokes and forgets the profile's login.
func (c *Client) Logout(ctx context.Context, profile string) error {
	return c.do(ctx, http.MethodPost, "/v1/profiles/"+url.PathEscape(profile)+"/logout", nil, nil, nil)
}

// PushToken hands a token to an externaljwt profile; a zero expiresAt lets the agent take
// the expiry from the token.
func (c *Client) PushToken(ctx context.Context, profile, token string, expiresAt time.Time) error {
	body := TokenPush{Token: token}
	if !expiresAt.IsZero() {
		body.ExpiresAt = &expiresAt
	}
	return c.do(ctx, http.MethodPut, "/v1/profiles/"+url.PathEscape(profile)+"/token", nil, body, nil)
}

// Sign asks the agent to sign a request with a sigv4 profile and returns the headers to
// add. The secret never leaves the agent.
func (c *Client) Sign(ctx context.Context, profile string, req SignRequest) (map[string]string, error) {
	var sig Signature
	err := c.do(ctx, http.MethodPost, "/v1/profiles/"+url.PathEscape(profile)+"/sign", nil, req, &sig)
	return sig.Headers, err
}

// Watcher reads the event stream.
type Watcher struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

// Watch subscribes to profile events. With initial set, the first events are the current
// profiles (type "current"). Close the watcher when done; cancelling ctx also ends it.
func (c *Client) Watch(ctx context.Context, initial bool) (*Watcher, error) {
	q := ""
	if initial {
		q = "?initial=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://authagent/v1/events"+q, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.conns().roundTrip(req, true)
	if err != nil {
		return nil, c.connError(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &Watcher{body: resp.Body, sc: sc}, nil
}

// Next blocks for the next event. It returns io.EOF when the agent ended the stream.
func (w *Watcher) Next() (Event, error) {
	for w.sc.Scan() {
		if len(bytes.TrimSpace(w.sc.Bytes())) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(w.sc.Bytes(), &e); err != nil {
			return Event{}, fmt.Errorf("bad event from agent: %w", err)
		}
		return e, nil
	}
	if err := w.sc.Err(); err != nil {
		return Event{}, err
	}
	return Event{}, io.EOF
}

// Close ends the subscription.
func (w *Watcher) Close() error { return w.body.Close() }
