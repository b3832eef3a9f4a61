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
	"sync"
	"time"

	"github.com/authagent/authagent/ipc/wire"
)

// Client talks to the agent. Its zero value finds the socket by itself
// (DefaultSocketPath); set Socket or Dial to point it elsewhere. It is safe for concurrent
// use and keeps connections alive (an http.Transport); do not copy it after first use. A
// request that meets a kept-alive connection the agent had closed is sent again on a new
// one only when it is idempotent (GET) or nothing of it was sent; others fail.
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
	// Prompt, when set, asks the user question (one line, such as "/usr/bin/authagent (pid
	// 42) asks for the token of profile work.") on the terminal and reports whether they
	// allowed it. The client then tells the agent it can ask (HeaderPrompt), and when a
	// profile that asks before each use cannot ask through the desktop (403
	// confirm_required), it calls Prompt and sends the request once more with the answer.
	// The agent takes such answers only from its own executable: authagent commands.
	Prompt func(ctx context.Context, question string) (bool, error)

	once  sync.Once
	tr    *http.Transport
	check wire.ServerCheck
}

// maxIdleConns bounds how many connections a Client keeps open between requests.
const maxIdleConns = 8

func (c *Client) socket() string {
	if c.Socket != "" {
		return c.Socket
	}
	return DefaultSocketPath()
}

func (c *Client) transport() *http.Transport {
	c.once.Do(func() {
		sock, dial := c.socket(), c.Dial
		c.tr = &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return c.check.Dial(ctx, sock, dial)
			},
			MaxIdleConns:        maxIdleConns,
			MaxIdleConnsPerHost: maxIdleConns,
			// A second before the agent would drop the connection itself.
			IdleConnTimeout:    ClientIdle - time.Second,
			DisableCompression: true,
		}
	})
	return c.tr
}

// CloseIdleConnections closes the connections the client keeps for later requests.
func (c *Client) CloseIdleConnections() { c.transport().CloseIdleConnections() }

// roundTrip sends req on a checked connection; errors are wire.ConnError's.
func (c *Client) roundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.transport().RoundTrip(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, wire.ConnError(c.socket(), err)
	}
	return resp, nil
}

// do sends one request; a non-2xx answer becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var sent []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		sent = b
	}
	u := "http://authagent" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var resp *http.Response
	for answer := ""; ; {
		var rd io.Reader
		if sent != nil {
			rd = bytes.NewReader(sent)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.Prompt != nil {
			req.Header.Set(wire.HeaderPrompt, "tty")
		}
		if answer != "" {
			req.Header.Set(wire.HeaderConfirm, answer)
		}
		if resp, err = c.roundTrip(req); err != nil {
			return err
		}
		if resp.StatusCode/100 == 2 {
			break
		}
		err = readError(resp)
		resp.Body.Close()
		// A profile that asks before each use, and no desktop to ask on: ask on the
		// terminal, once, and send the answer.
		var e *Error
		if answer != "" || c.Prompt == nil || !errors.As(err, &e) || e.Code != CodeConfirmRequired || e.Confirm == "" {
			return err
		}
		ok, perr := c.Prompt(ctx, e.Message)
		if perr != nil {
			return fmt.Errorf("%s The desktop could not ask, and the terminal could not either: %w", e.Message, perr)
		}
		answer = e.Confirm + " deny"
		if ok {
			answer = e.Confirm + " allow"
		}
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return wire.ConnError(c.socket(), err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("read agent answer to %s %s: %w", method, path, err)
	}
	return nil
}

func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return wire.ReadError(resp.StatusCode, resp.Status, b)
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
	return &p, c.do(ctx, http.MethodGet, wire.ProfilePath(name, ""), nil, nil, &p)
}

// Credential returns a profile's current credential.
func (c *Client) Credential(ctx context.Context, profile string, opts ...CredentialOption) (*Credential, error) {
	var cr Credential
	return &cr, c.do(ctx, http.MethodGet, wire.ProfilePath(profile, "/credential"), wire.CredentialQuery(opts...), nil, &cr)
}

// CredentialForURL returns the credential of the profile whose hosts match target's host.
func (c *Client) CredentialForURL(ctx context.Context, target string, opts ...CredentialOption) (*Credential, error) {
	q := wire.CredentialQuery(opts...)
	q.Set("url", target)
	var cr Credential
	return &cr, c.do(ctx, http.MethodGet, "/v1/credential", q, nil, &cr)
}

// Audit returns the newest entries of the agent's audit log that q selects, oldest first
// (GET /v1/audit). Errors: *Error with code bad_request (400: a limit out of range) or
// unavailable (503: the agent keeps no audit log, or cannot read it).
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	var out wire.AuditLog
	err := c.do(ctx, http.MethodGet, "/v1/audit", q.Values(), nil, &out)
	return out.Entries, err
}

// Reject tells the agent a server refused the profile's token, so the next request gets
// a fresh one.
func (c *Client) Reject(ctx context.Context, profile string) error {
	return c.do(ctx, http.MethodPost, wire.ProfilePath(profile, "/reject"), nil, nil, nil)
}

// PutProfile defines or replaces a profile; spec.Secret, when set, goes to the secret store.
func (c *Client) PutProfile(ctx context.Context, name string, spec ProfileSpec) error {
	return c.do(ctx, http.MethodPut, wire.ProfilePath(name, ""), nil, spec, nil)
}

// SetSecret stores or replaces a profile's secret and changes nothing else of the profile
// (hosts, key_id, headers stay). Errors: *Error with code unknown_profile (404),
// bad_request (400: empty, or a control character), too_large (413: over 64 KiB) or
// unavailable (503: the secret store refused).
func (c *Client) SetSecret(ctx context.Context, name, secret string) error {
	return c.do(ctx, http.MethodPut, wire.ProfilePath(name, "/secret"), nil, SecretPut{Secret: secret}, nil)
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
	return c.do(ctx, http.MethodDelete, wire.ProfilePath(name, ""), nil, nil, nil)
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
	return &lc, c.do(ctx, http.MethodPost, wire.ProfilePath(profile, "/login"), nil, body, &lc)
}

// CancelLogin stops a login in progress.
func (c *Client) CancelLogin(ctx context.Context, profile string) error {
	return c.do(ctx, http.MethodDelete, wire.ProfilePath(profile, "/login"), nil, nil, nil)
}

// Logout revokes and forgets the profile's login.
func (c *Client) Logout(ctx context.Context, profile string) error {
	return c.do(ctx, http.MethodPost, wire.ProfilePath(profile, "/logout"), nil, nil, nil)
}

// PushToken hands a token to an externaljwt profile; a zero expiresAt lets the agent take
// the expiry from the token.
func (c *Client) PushToken(ctx context.Context, profile, token string, expiresAt time.Time) error {
	body := TokenPush{Token: token}
	if !expiresAt.IsZero() {
		body.ExpiresAt = &expiresAt
	}
	return c.do(ctx, http.MethodPut, wire.ProfilePath(profile, "/token"), nil, body, nil)
}

// Sign asks the agent to sign a request with a sigv4 profile and returns the headers to
// add. The secret never leaves the agent.
func (c *Client) Sign(ctx context.Context, profile string, req SignRequest) (map[string]string, error) {
	var sig Signature
	err := c.do(ctx, http.MethodPost, wire.ProfilePath(profile, "/sign"), nil, req, &sig)
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
	resp, err := c.roundTrip(req)
	if err != nil {
		return nil, err
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
