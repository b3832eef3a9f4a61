package server

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/ipc/wire"
	"github.com/authagent/authagent/providers"
)

// Limits on clients. A client that sends nothing for ipc.ClientIdle is dropped too.
const (
	MaxBodyBytes = 1 << 20          // larger request bodies get 413
	ClientWrite  = 10 * time.Second // a client that takes no part of an answer (or of one event) this long is dropped
)

// shutdownTimeout bounds how long Serve waits for answers in progress once ctx ends.
const shutdownTimeout = 2 * time.Second

// Server serves an agent on a socket.
type Server struct {
	Agent *agent.Agent
	Log   *slog.Logger
	// UID is the only uid allowed to connect; zero value means the agent's own uid.
	UID *int
	// WriteTimeout is how long a client may take to receive one answer, or one event of
	// GET /v1/events, before its connection is closed; zero means ClientWrite.
	WriteTimeout time.Duration
	// Stop, when set, ends the agent: POST /v1/stop calls it once the answer is sent (it
	// should cancel the context Serve runs with). nil: POST /v1/stop answers 503.
	Stop func()
	// Audit, when set, serves GET /v1/audit; nil: it answers 503.
	Audit AuditReader

	refused refusals // connections from other users the audit log was told of
}

type peerKey struct{}

// serveKey holds the context Serve was given: once it ends, requests fail because the
// agent shuts down, not because their client left.
type serveKey struct{}

// Serve answers connections on ln until ctx is cancelled, then shuts down: every request's
// context ends with ctx, so open event streams close at once, and answers in progress get
// up to shutdownTimeout before their connections are closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: ipc.ClientIdle,
		IdleTimeout:       ipc.ClientIdle,
		BaseContext:       func(net.Listener) context.Context { return context.WithValue(ctx, serveKey{}, ctx) },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			p, err := wire.PeerOf(c)
			if err != nil {
				s.log().Warn("cannot read peer credentials", "error", err)
			}
			ctx = context.WithValue(ctx, peerKey{}, p)
			if p.Known && p.UID == s.uid() { // others are refused; their /proc is not ours to read
				ctx = agent.WithCaller(ctx, callerOf(p))
			}
			return ctx
		},
		ErrorLog: slog.NewLogLogger(s.log().Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			s.log().Warn("answers still in progress at shutdown; closing their connections", "error", err)
			hs.Close()
		}
	}()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Server) uid() int {
	if s.UID != nil {
		return *s.UID
	}
	return os.Getuid()
}

// Handler is the API. Routes are registered here, in one table, sorted by path.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET /v1/audit", s.auditLog},
		{"GET /v1/credential", s.credentialForURL},
		{"GET /v1/events", s.events},
		{"GET /v1/profiles", s.profiles},
		{"DELETE /v1/profiles/{name}", s.deleteProfile},
		{"GET /v1/profiles/{name}", s.profile},
		{"PUT /v1/profiles/{name}", s.putProfile},
		{"GET /v1/profiles/{name}/credential", s.credential},
		{"DELETE /v1/profiles/{name}/login", s.cancelLogin},
		{"POST /v1/profiles/{name}/login", s.login},
		{"POST /v1/profiles/{name}/logout", s.logout},
		{"POST /v1/profiles/{name}/reject", s.reject},
		{"PUT /v1/profiles/{name}/secret", s.putSecret},
		{"POST /v1/profiles/{name}/sign", s.sign},
		{"PUT /v1/profiles/{name}/token", s.pushToken},
		{"POST /v1/reload", s.reload},
		{"GET /v1/status", s.status},
		{"POST /v1/stop", s.stop},
	} {
		mux.HandleFunc(r.pattern, r.h)
	}
	return s.guard(mux)
}

// guard checks the peer, reads the whole body (capped) before any handler runs, gives
// every answer a write deadline and answers unknown paths in the API's error shape.
func (s *Server) guard(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(raw http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(raw)
		// net/http keeps the last answer's write deadline on a kept-alive connection.
		rc.SetWriteDeadline(time.Time{})
		w := &deadlineWriter{ResponseWriter: raw, rc: rc, timeout: s.writeTimeout()}
		// What a handler leaves in the buffer goes out after it returns; that too must not
		// wait forever for a client that stopped reading.
		defer func() { rc.SetWriteDeadline(time.Now().Add(w.timeout)) }()
		p, _ := r.Context().Value(peerKey{}).(wire.Peer)
		if !p.Known || p.UID != s.uid() {
			s.log().Warn("refused connection from another user", "peer_uid", p.UID, "peer_pid", p.PID, "known", p.Known, "path", r.URL.Path)
			s.auditRefused(p)
			writeError(w, &ipc.Error{Status: http.StatusForbidden, Code: ipc.CodeForbidden,
				Message: fmt.Sprintf("this agent serves only uid %d; start your own with `eval \"$(authagent start)\"`", s.uid())})
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			if allowed := allowedMethods(mux, r); len(allowed) > 0 {
				w.Header().Set("Allow", strings.Join(allowed, ", "))
				writeError(w, &ipc.Error{Status: http.StatusMethodNotAllowed, Code: ipc.CodeMethodNotAllowed,
					Message: fmt.Sprintf("%s does not take %s; use %s", r.URL.Path, r.Method, strings.Join(allowed, " or "))})
				return
			}
			writeError(w, &ipc.Error{Status: http.StatusNotFound, Code: ipc.CodeNotFound,
				Message: fmt.Sprintf("no such API endpoint: %s %s", r.Method, r.URL.Path)})
			return
		}
		if r.ContentLength > MaxBodyBytes {
			writeError(w, tooLarge())
			return
		}
		if r.ContentLength != 0 {
			// Nothing is applied from a body that is cut short.
			body, err := readBody(raw, r)
			if err != nil {
				writeError(w, err)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if t, err := terminalAnswer(r.Header); err != nil {
			writeError(w, err)
			return
		} else if t != (agent.TerminalAnswer{}) {
			r = r.WithContext(agent.WithTerminal(r.Context(), t))
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return ClientWrite
}

// readBody reads r's whole body, at most MaxBodyBytes, within ClientIdle. A body that
// ends before its declared length, a chunked body without its last chunk, and a body
// that stalls are bad requests; a body too large is 413.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *ipc.Error) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(ipc.ClientIdle))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err == nil {
		// Cleared, so that net/http's wait for the next request (or for the client to
		// hang up, which ends the request's context) is not cut short while we answer.
		rc.SetReadDeadline(time.Time{})
		return body, nil
	}
	// Left in the past: net/http would otherwise wait, without a deadline, for the rest of
	// the body before it sends our answer.
	rc.SetReadDeadline(time.Unix(1, 0))
	var mbe *http.MaxBytesError
	var ne net.Error
	got := fmt.Sprintf("%d bytes", len(body))
	if r.ContentLength > 0 {
		got = fmt.Sprintf("%d of the %d bytes its Content-Length announced", len(body), r.ContentLength)
	}
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge()
	case errors.As(err, &ne) && ne.Timeout():
		return nil, &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest,
			Message: fmt.Sprintf("request body did not arrive within %s (got %s); nothing was changed: send the whole body at once", ipc.ClientIdle, got)}
	default:
		return nil, &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest,
			Message: fmt.Sprintf("request body was cut short after %s (%v); nothing was changed: send the whole body", got, err)}
	}
}

// deadlineWriter gives an answer its write timeout from its first byte on, so a client
// that stops reading is dropped instead of holding its connection forever. The event
// stream moves the deadline on for each event.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	armed   bool
}

func (d *deadlineWriter) arm() {
	if !d.armed {
		d.armed = true
		d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	}
}

func (d *deadlineWriter) WriteHeader(status int) {
	d.arm()
	d.ResponseWriter.WriteHeader(status)
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	d.arm()
	return d.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// allowedMethods lists the methods the API takes on r's path.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

func tooLarge() *ipc.Error {
	return &ipc.Error{Status: http.StatusRequestEntityTooLarge, Code: ipc.CodeTooLarge,
		Message: fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes)}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st := s.Agent.Status()
	writeJSON(w, http.StatusOK, ipc.Status{
		Version:  st.Version,
		PID:      st.PID,
		UptimeS:  int64(st.Uptime / time.Second),
		Profiles: st.Profiles,
		SecretStore: ipc.SecretStore{
			Kind: st.Store.Kind, Persistent: st.Store.Persistent, Warning: st.Store.Warning,
		},
		ConfigError:   st.ConfigError,
		ConfigWarning: st.ConfigWarning,
	})
}

// reload re-reads the config file: 204, or the reload's error (400 for a file that does
// not load, 503 for one that is missing, empty or unreadable). The request's context
// carries only the caller (for the audit log): the reload finishes whether or not the
// client waits.
func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if err := s.Agent.ReloadFor(r.Context()); err != nil {
		s.log().Error("config reload failed; keeping the old config", "error", err)
		writeError(w, apiError(err)) // the reload is done either way: no 499 for a client that left
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// stop answers 202 with the agent's pid, then ends the agent through s.Stop.
func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	if s.Stop == nil {
		writeError(w, &ipc.Error{Status: http.StatusServiceUnavailable, Code: ipc.CodeUnavailable,
			Message: "this agent cannot be stopped over its socket; stop the program that runs it"})
		return
	}
	p, _ := r.Context().Value(peerKey{}).(wire.Peer)
	s.log().Info("stop requested over the socket", "peer_pid", p.PID)
	writeJSON(w, http.StatusAccepted, ipc.Stopping{PID: os.Getpid()})
	http.NewResponseController(w).Flush()
	s.Stop()
}

// profiles lists every profile, or with ?url= only the one whose hosts match the URL.
func (s *Server) profiles(w http.ResponseWriter, r *http.Request) {
	var infos []agent.ProfileInfo
	if raw := r.URL.Query().Get("url"); raw == "" {
		infos = s.Agent.Profiles()
	} else { // an index lookup: the others are not listed at all
		target, perr := parseTarget(raw)
		if perr != nil {
			writeError(w, perr)
			return
		}
		name, err := s.Agent.ProfileForURL(target)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		info, err := s.Agent.Profile(name)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		infos = []agent.ProfileInfo{info}
	}
	out := make([]ipc.Profile, 0, len(infos))
	for _, i := range infos {
		out = append(out, wireProfile(i))
	}
	writeJSON(w, http.StatusOK, struct {
		Profiles []ipc.Profile `json:"profiles"`
	}{out})
}

func (s *Server) profile(w http.ResponseWriter, r *http.Request) {
	info, err := s.Agent.Profile(r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wireProfile(info))
}

func (s *Server) credential(w http.ResponseWriter, r *http.Request) {
	minValid, err := minValidParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	token, err := tokenParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var target *url.URL
	if raw := r.URL.Query().Get("url"); raw != "" {
		if target, err = parseTarget(raw); err != nil {
			writeError(w, err)
			return
		}
	}
	if token == ipc.TokenKube {
		var kerr error
		if token, kerr = s.kubeToken(r.PathValue("name")); kerr != nil {
			s.auditKube(r, r.PathValue("name"), target, kerr)
			s.fail(w, r, kerr)
			return
		}
	}
	var c *agent.CredentialInfo
	var cerr error
	if token == ipc.TokenID {
		c, cerr = s.Agent.IDToken(r.Context(), r.PathValue("name"), minValid, target)
	} else {
		c, cerr = s.Agent.Credential(r.Context(), r.PathValue("name"), minValid, target)
	}
	s.writeCredential(w, r, c, cerr)
}

func (s *Server) credentialForURL(w http.ResponseWriter, r *http.Request) {
	minValid, err := minValidParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	token, err := tokenParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	target, err := parseTarget(r.URL.Query().Get("url"))
	if err != nil {
		writeError(w, err)
		return
	}
	if token == ipc.TokenKube {
		name, kerr := s.Agent.ProfileForURL(target)
		if kerr == nil {
			token, kerr = s.kubeToken(name)
		}
		if kerr != nil {
			s.auditKube(r, name, target, kerr)
			s.fail(w, r, kerr)
			return
		}
	}
	var c *agent.CredentialInfo
	var cerr error
	if token == ipc.TokenID {
		c, cerr = s.Agent.IDTokenForURL(r.Context(), target, minValid)
	} else {
		c, cerr = s.Agent.CredentialForURL(r.Context(), target, minValid)
	}
	s.writeCredential(w, r, c, cerr)
}

// tokenParam is the credential endpoints' token= parameter: TokenAccess (also when
// absent), TokenID or TokenKube.
func tokenParam(r *http.Request) (string, *ipc.Error) {
	switch raw := r.URL.Query().Get("token"); raw {
	case "", ipc.TokenAccess:
		return ipc.TokenAccess, nil
	case ipc.TokenID, ipc.TokenKube:
		return raw, nil
	default:
		return "", &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest,
			Message: fmt.Sprintf("token must be %q, %q or %q, got %q", ipc.TokenAccess, ipc.TokenID, ipc.TokenKube, raw)}
	}
}

// kubeToken is the token kube-credential hands kubectl for profile name: TokenID when its
// kube_token says so, else TokenAccess.
func (s *Server) kubeToken(name string) (string, error) {
	info, err := s.Agent.Profile(name)
	if err != nil {
		return "", err
	}
	if info.KubeToken == ipc.TokenID {
		return ipc.TokenID, nil
	}
	return ipc.TokenAccess, nil
}

func (s *Server) writeCredential(w http.ResponseWriter, r *http.Request, c *agent.CredentialInfo, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ipc.Credential{
		Profile:      c.Profile,
		TokenType:    c.TokenType,
		Token:        c.Token,
		ExpiresAt:    apiTime(c.ExpiresAt),
		Headers:      nonNil(c.Headers),
		GRPCMetadata: nonNil(c.Metadata),
		Username:     c.Username,
	})
}

func (s *Server) reject(w http.ResponseWriter, r *http.Request) {
	s.noContent(w, r, s.Agent.Reject(r.Context(), r.PathValue("name")))
}

// login starts a login; the body (a LoginRequest) is optional.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var lr ipc.LoginRequest
	if body, _ := io.ReadAll(r.Body); len(bytes.TrimSpace(body)) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := decodeBody(r, &lr); err != nil {
			writeError(w, err)
			return
		}
	}
	switch lr.Flow {
	case "", ipc.FlowBrowser, ipc.FlowDevice:
	default:
		writeError(w, &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest,
			Message: fmt.Sprintf("flow must be %q or %q (or left out: the profile's login key decides), got %q", ipc.FlowBrowser, ipc.FlowDevice, lr.Flow)})
		return
	}
	c, err := s.Agent.Login(r.Context(), r.PathValue("name"), providers.LoginOptions{Flow: lr.Flow, Display: lr.Display})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, wireChallenge(c))
}

func (s *Server) cancelLogin(w http.ResponseWriter, r *http.Request) {
	s.noContent(w, r, s.Agent.CancelLogin(r.Context(), r.PathValue("name")))
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	s.noContent(w, r, s.Agent.Logout(r.Context(), r.PathValue("name")))
}

func (s *Server) pushToken(w http.ResponseWriter, r *http.Request) {
	var tp ipc.TokenPush
	if err := decodeBody(r, &tp); err != nil {
		writeError(w, err)
		return
	}
	var exp time.Time
	if tp.ExpiresAt != nil {
		exp = *tp.ExpiresAt
	}
	s.noContent(w, r, s.Agent.PushToken(r.Context(), r.PathValue("name"), tp.Token, exp))
}

func (s *Server) sign(w http.ResponseWriter, r *http.Request) {
	var sr ipc.SignRequest
	if err := decodeBody(r, &sr); err != nil {
		writeError(w, err)
		return
	}
	if sr.Method == "" {
		sr.Method = http.MethodGet
	}
	h, err := s.Agent.Sign(r.Context(), r.PathValue("name"), providers.SignRequest{
		Method: sr.Method, URL: sr.URL, Headers: sr.Headers, BodySHA256: sr.BodySHA256,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ipc.Signature{Headers: nonNil(h)})
}

func (s *Server) putProfile(w http.ResponseWriter, r *http.Request) {
	var spec profileSpec
	if err := decodeBody(r, &spec); err != nil {
		writeError(w, err)
		return
	}
	pc := spec.ProfileConfig
	s.noContent(w, r, s.Agent.PutProfile(r.Context(), r.PathValue("name"), &pc, spec.Secret))
}

// profileSpec is the body of PUT /v1/profiles/{name} (ipc.ProfileSpec) as the agent reads
// it: the config keys go into the agent's own type, so that their values are read and
// checked as the config file's are.
type profileSpec struct {
	providers.ProfileConfig
	Secret *string `json:"secret,omitempty"`
}

func (s *Server) putSecret(w http.ResponseWriter, r *http.Request) {
	var sp ipc.SecretPut
	if err := decodeBody(r, &sp); err != nil {
		writeError(w, err)
		return
	}
	s.noContent(w, r, s.Agent.SetSecret(r.Context(), r.PathValue("name"), sp.Secret))
}

func (s *Server) deleteProfile(w http.ResponseWriter, r *http.Request) {
	s.noContent(w, r, s.Agent.DeleteProfile(r.Context(), r.PathValue("name")))
}

// events streams profile changes as newline-delimited JSON, one flushed line per event.
// With ?initial=true it first sends every profile as a "current" event.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	sub := s.Agent.Subscribe()
	defer sub.Close()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	// Each event gets the write timeout to reach the client: a watcher that stopped
	// reading is dropped, a quiet stream is not.
	timeout := s.writeTimeout()
	send := func(e ipc.Event) bool {
		rc.SetWriteDeadline(time.Now().Add(timeout))
		if err := enc.Encode(e); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if initial, _ := strconv.ParseBool(r.URL.Query().Get("initial")); initial {
		now := time.Now().UTC()
		for _, p := range s.Agent.Profiles() {
			if !send(ipc.Event{Type: "current", Profile: wireProfile(p), Time: now}) {
				return
			}
		}
	}
	rc.SetWriteDeadline(time.Now().Add(timeout))
	if err := rc.Flush(); err != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case e, ok := <-sub.C:
			if !ok {
				return // the agent is shutting down or this watcher fell behind; the client reconnects
			}
			if !send(ipc.Event{Type: e.Type, Profile: wireProfile(e.Profile), Time: e.Time.UTC()}) {
				return
			}
		}
	}
}

func wireProfile(i agent.ProfileInfo) ipc.Profile {
	p := ipc.Profile{
		Name:      i.Name,
		Provider:  i.Provider,
		State:     string(i.State),
		ExpiresAt: apiTime(i.ExpiresAt),
		Hosts:     i.Hosts,
		Username:  i.Username,
		LastError: i.LastError,

		Capabilities: i.Capabilities,
		KubeToken:    i.KubeToken,
	}
	if p.Hosts == nil {
		p.Hosts = []string{}
	}
	if i.Login != nil {
		p.Login = wireChallenge(i.Login)
	}
	return p
}

func wireChallenge(c *providers.Challenge) *ipc.LoginChallenge {
	return &ipc.LoginChallenge{
		UserCode:                c.UserCode,
		VerificationURI:         c.VerificationURI,
		VerificationURIComplete: c.VerificationURIComplete,
		ExpiresAt:               c.ExpiresAt.UTC().Truncate(time.Second),
		Interval:                int(c.Interval / time.Second),
		Flow:                    flowOf(c),
		AuthURL:                 c.AuthURL,
	}
}

func flowOf(c *providers.Challenge) string {
	if c.Flow == "" {
		return ipc.FlowDevice
	}
	return c.Flow
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func minValidParam(r *http.Request) (time.Duration, *ipc.Error) {
	raw := r.URL.Query().Get("min_valid")
	if raw == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(raw, 10, 32)
	if err != nil || n < 0 {
		return 0, &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest,
			Message: fmt.Sprintf("min_valid must be a whole number of seconds, got %q", raw)}
	}
	return time.Duration(n) * time.Second, nil
}

func parseTarget(raw string) (*url.URL, *ipc.Error) {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || u.Scheme == "" || u.Host == "" {
		return nil, &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest,
			Message: fmt.Sprintf("url must be an absolute URL like https://api.example.com/path, got %q", raw)}
	}
	return u, nil
}

// maxBodyDepth bounds how deeply a request body may nest; the API's bodies nest two deep.
const maxBodyDepth = 16

// decodeBody decodes a request body (one JSON object) into v, a pointer to a struct. Keys
// match v's json names exactly: a key in another case, an unknown key and a key given
// twice (in any object of the body) are refused with 400 naming the key, as the TOML
// loader does. encoding/json alone would match keys in any case and keep the last of
// two, so a "Secret" could override a "secret".
func decodeBody(r *http.Request, v any) *ipc.Error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest, Message: "read request body: " + err.Error()}
	}
	// encoding/json would replace invalid UTF-8 with U+FFFD, silently changing a secret.
	if !utf8.Valid(body) {
		return &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest, Message: "request body is not valid UTF-8 (JSON must be); nothing was changed"}
	}
	known := bodyKeys(reflect.TypeOf(v).Elem())
	if err := checkBody(body, known); err != nil {
		return &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest, Message: err.Error()}
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			// Field starts with the names of embedded structs ("ProfileConfig.hosts").
			key := strings.Split(te.Field, ".")
			for len(key) > 1 && !known[key[0]] {
				key = key[1:]
			}
			return &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest,
				Message: fmt.Sprintf("request body: key %q holds a JSON %s, which does not fit: want %s", strings.Join(key, "."), te.Value, jsonKind(te.Type))}
		}
		return &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest,
			Message: "request body is not valid JSON for this endpoint: " + strings.TrimPrefix(err.Error(), "json: ") + keyOfError(body, v)}
	}
	return nil
}

// keyOfError names the top-level key whose value does not decode into v's type on its
// own, for errors that encoding/json reports without the key (a duration string, a number
// out of range).
func keyOfError(body []byte, v any) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return ""
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		one, _ := json.Marshal(map[string]json.RawMessage{k: obj[k]})
		if json.Unmarshal(one, reflect.New(reflect.TypeOf(v).Elem()).Interface()) != nil {
			return fmt.Sprintf(" (at key %q)", k)
		}
	}
	return ""
}

// checkBody checks that body is one JSON object, with no key twice in any object, whose
// own keys are all in known.
func checkBody(body []byte, known map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err == io.EOF {
		return errors.New("request body is empty; send a JSON object")
	}
	if err != nil {
		return fmt.Errorf("request body is not valid JSON: %w", err)
	}
	if tok != json.Delim('{') {
		return errors.New("request body must be a JSON object, {…}")
	}
	var keys []string
	if err := checkObject(dec, "", 1, &keys); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("request body holds more than one JSON value")
	}
	for _, k := range keys {
		if known[k] {
			continue
		}
		for want := range known {
			if strings.EqualFold(k, want) {
				return fmt.Errorf("request body: unknown key %q; did you mean %q? (keys are lowercase)", k, want)
			}
		}
		names := make([]string, 0, len(known))
		for n := range known {
			names = append(names, n)
		}
		slices.Sort(names)
		return fmt.Errorf("request body: unknown key %q; this endpoint takes %s", k, strings.Join(names, ", "))
	}
	return nil
}

// checkObject reads the rest of an object whose '{' dec just returned, refusing a key
// given twice; keys, when not nil, collects its keys. path names the object in errors.
func checkObject(dec *json.Decoder, path string, depth int, keys *[]string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("request body is not valid JSON: %w", err)
		}
		k, _ := tok.(string) // the decoder allows only strings here
		if seen[k] {
			return fmt.Errorf("request body: key %q is given twice", path+k)
		}
		seen[k] = true
		if keys != nil {
			*keys = append(*keys, k)
		}
		if err := checkValue(dec, path+k+".", depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("request body is not valid JSON: %w", err)
	}
	return nil
}

// checkValue reads one value, checking the objects in it.
func checkValue(dec *json.Decoder, path string, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("request body is not valid JSON: %w", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxBodyDepth {
		return fmt.Errorf("request body nests deeper than %d levels", maxBodyDepth)
	}
	if d == '{' {
		return checkObject(dec, path, depth+1, nil)
	}
	for dec.More() { // '[': objects in a list are named by the list's key
		if err := checkValue(dec, path, depth+1); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("request body is not valid JSON: %w", err)
	}
	return nil
}

// bodyKeys lists the json names of a struct's fields, with those of embedded structs.
func bodyKeys(t reflect.Type) map[string]bool {
	keys := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			for k := range bodyKeys(f.Type) {
				keys[k] = true
			}
		case !f.IsExported() || name == "-":
		case name == "":
			keys[f.Name] = true
		default:
			keys[name] = true
		}
	}
	return keys
}

// jsonKind says in JSON's words what a Go type takes.
func jsonKind(t reflect.Type) string {
	if t == reflect.TypeFor[time.Time]() {
		return "an RFC 3339 time string"
	}
	if t.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) || reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list of " + strings.TrimPrefix(jsonKind(t.Elem()), "a ") + "s"
	case reflect.Map:
		return "an object of " + strings.TrimPrefix(jsonKind(t.Elem()), "a ") + "s"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.Struct:
		return "an object"
	}
	return t.String()
}

// fail answers a request the agent could not serve. When the request's context ended
// first, the agent is not at fault: a client that went away gets no answer (logged as 499,
// "client closed request"), and a request cut short by shutdown gets 503.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		if serve, ok := r.Context().Value(serveKey{}).(context.Context); ok && serve.Err() != nil {
			writeError(w, &ipc.Error{Status: http.StatusServiceUnavailable, Code: ipc.CodeUnavailable,
				Message: "the agent is shutting down; try again once it is back"})
			return
		}
		// Read as 499 in the log; a client that only closed its sending half still reads this.
		s.log().Debug("client closed request", "status", 499, "method", r.Method, "path", r.URL.Path, "error", err)
		writeError(w, &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest,
			Message: "request cancelled: the client closed its connection before the answer was ready"})
		return
	}
	e := apiError(err)
	if e.Status == http.StatusInternalServerError {
		s.log().Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeError(w, e)
}

// terminalAnswer reads what a request says about confirmation on the caller's terminal
// (wire.HeaderPrompt, wire.HeaderConfirm).
func terminalAnswer(h http.Header) (agent.TerminalAnswer, *ipc.Error) {
	p := h.Get(wire.HeaderPrompt)
	t := agent.TerminalAnswer{CanAsk: p == "tty", Handover: p == "handover"}
	if v := h.Get(wire.HeaderConfirm); v != "" {
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "allow" && f[1] != "deny" {
			return t, &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest,
				Message: wire.HeaderConfirm + `: want "ID allow" or "ID deny", with the id of a confirm_required answer`}
		}
		t.ID, t.Allow = f[0], f[1] == "allow"
	}
	return t, nil
}

// apiError maps an agent error to the API's error code and status.
func apiError(err error) *ipc.Error {
	var e *ipc.Error
	if errors.As(err, &e) {
		return e
	}
	var cr *agent.ConfirmRequiredError
	if errors.As(err, &cr) {
		return &ipc.Error{Status: http.StatusForbidden, Code: ipc.CodeConfirmRequired, Message: cr.Error(), Confirm: cr.ID}
	}
	var ce *agent.ConfigError
	var pce *providers.ConfigError
	for _, m := range []struct {
		target error
		status int
		code   string
	}{
		{agent.ErrTooLarge, http.StatusRequestEntityTooLarge, ipc.CodeTooLarge},
		{agent.ErrUnknownProfile, http.StatusNotFound, ipc.CodeUnknownProfile},
		{agent.ErrNoProfile, http.StatusNotFound, ipc.CodeNoProfile},
		{agent.ErrBadRequest, http.StatusBadRequest, ipc.CodeBadRequest},
		{agent.ErrForbidden, http.StatusForbidden, ipc.CodeForbidden},
		{agent.ErrDenied, http.StatusForbidden, ipc.CodeDenied},
		{agent.ErrNeedsLogin, http.StatusUnauthorized, ipc.CodeNeedsLogin},
		{agent.ErrLoginPending, http.StatusConflict, ipc.CodeLoginPending},
		{agent.ErrProvider, http.StatusBadGateway, ipc.CodeProviderError},
		{agent.ErrUnavailable, http.StatusServiceUnavailable, ipc.CodeUnavailable},
		{context.DeadlineExceeded, http.StatusServiceUnavailable, ipc.CodeUnavailable},
	} {
		if errors.Is(err, m.target) {
			return &ipc.Error{Status: m.status, Code: m.code, Message: err.Error()}
		}
	}
	if errors.As(err, &ce) || errors.As(err, &pce) {
		return &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest, Message: err.Error()}
	}
	return &ipc.Error{Status: http.StatusInternalServerError, Code: ipc.CodeInternal, Message: err.Error()}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *ipc.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	wire.WriteError(w, e)
}

// apiTime renders a time for the API: UTC, whole seconds, nil when zero.
func apiTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC().Truncate(time.Second)
	return &u
}

// noContent answers a change that returns nothing: 204, or err as the API's error.
func (s *Server) noContent(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
