package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/providers"
)

// Limits on clients.
const (
	MaxBodyBytes = 1 << 20         // larger request bodies get 413
	ClientIdle   = 5 * time.Second // a client that sends nothing this long is dropped
)

// Server serves an agent on a socket.
type Server struct {
	Agent *agent.Agent
	Log   *slog.Logger
	// UID is the only uid allowed to connect; zero value means the agent's own uid.
	UID *int
}

type peerKey struct{}

// Serve answers connections on ln until ctx is cancelled, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: ClientIdle,
		IdleTimeout:       ClientIdle,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			p, err := peerOf(c)
			if err != nil {
				s.log().Warn("cannot read peer credentials", "error", err)
			}
			return context.WithValue(ctx, peerKey{}, p)
		},
		ErrorLog: slog.NewLogLogger(s.log().Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
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
		{"POST /v1/profiles/{name}/sign", s.sign},
		{"PUT /v1/profiles/{name}/token", s.pushToken},
		{"GET /v1/status", s.status},
	} {
		mux.HandleFunc(r.pattern, r.h)
	}
	return s.guard(mux)
}

// guard checks the peer, caps bodies and answers unknown paths in the API's error shape.
func (s *Server) guard(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(peerKey{}).(Peer)
		if !p.Known || p.UID != s.uid() {
			s.log().Warn("refused connection from another user", "peer_uid", p.UID, "peer_pid", p.PID, "known", p.Known, "path", r.URL.Path)
			writeError(w, &Error{Status: http.StatusForbidden, Code: CodeForbidden,
				Message: fmt.Sprintf("this agent serves only uid %d; start your own with `eval \"$(authagent start)\"`", s.uid())})
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			if allowed := allowedMethods(mux, r); len(allowed) > 0 {
				w.Header().Set("Allow", strings.Join(allowed, ", "))
				writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
					Message: fmt.Sprintf("%s does not take %s; use %s", r.URL.Path, r.Method, strings.Join(allowed, " or "))})
				return
			}
			writeError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound,
				Message: fmt.Sprintf("no such API endpoint: %s %s", r.Method, r.URL.Path)})
			return
		}
		if r.ContentLength > MaxBodyBytes {
			writeError(w, tooLarge())
			return
		}
		if r.ContentLength != 0 {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(ClientIdle))
		}
		mux.ServeHTTP(w, r)
	})
}

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

func tooLarge() *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
		Message: fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes)}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st := s.Agent.Status()
	writeJSON(w, http.StatusOK, Status{
		Version:  st.Version,
		PID:      st.PID,
		UptimeS:  int64(st.Uptime / time.Second),
		Profiles: st.Profiles,
		SecretStore: SecretStore{
			Kind: st.Store.Kind, Persistent: st.Store.Persistent, Warning: st.Store.Warning,
		},
	})
}

// profiles lists every profile, or with ?url= only the one whose hosts match the URL.
func (s *Server) profiles(w http.ResponseWriter, r *http.Request) {
	infos := s.Agent.Profiles()
	if raw := r.URL.Query().Get("url"); raw != "" {
		target, perr := parseTarget(raw)
		if perr != nil {
			writeError(w, perr)
			return
		}
		name, err := s.Agent.ProfileForURL(target)
		if err != nil {
			writeError(w, apiError(err))
			return
		}
		info, err := s.Agent.Profile(name)
		if err != nil {
			writeError(w, apiError(err))
			return
		}
		infos = []agent.ProfileInfo{info}
	}
	out := make([]Profile, 0, len(infos))
	for _, i := range infos {
		out = append(out, wireProfile(i))
	}
	writeJSON(w, http.StatusOK, struct {
		Profiles []Profile `json:"profiles"`
	}{out})
}

func (s *Server) profile(w http.ResponseWriter, r *http.Request) {
	info, err := s.Agent.Profile(r.PathValue("name"))
	if err != nil {
		writeError(w, apiError(err))
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
	var target *url.URL
	if raw := r.URL.Query().Get("url"); raw != "" {
		if target, err = parseTarget(raw); err != nil {
			writeError(w, err)
			return
		}
	}
	c, cerr := s.Agent.Credential(r.Context(), r.PathValue("name"), minValid, target)
	s.writeCredential(w, c, cerr)
}

func (s *Server) credentialForURL(w http.ResponseWriter, r *http.Request) {
	minValid, err := minValidParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	target, err := parseTarget(r.URL.Query().Get("url"))
	if err != nil {
		writeError(w, err)
		return
	}
	c, cerr := s.Agent.CredentialForURL(r.Context(), target, minValid)
	s.writeCredential(w, c, cerr)
}

func (s *Server) writeCredential(w http.ResponseWriter, c *agent.CredentialInfo, err error) {
	if err != nil {
		writeError(w, apiError(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, Credential{
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
	if err := s.Agent.Reject(r.PathValue("name")); err != nil {
		writeError(w, apiError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	c, err := s.Agent.Login(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, apiError(err))
		return
	}
	writeJSON(w, http.StatusAccepted, wireChallenge(c))
}

func (s *Server) cancelLogin(w http.ResponseWriter, r *http.Request) {
	if err := s.Agent.CancelLogin(r.PathValue("name")); err != nil {
		writeError(w, apiError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.Agent.Logout(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, apiError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) pushToken(w http.ResponseWriter, r *http.Request) {
	var tp TokenPush
	if err := decodeBody(r, &tp); err != nil {
		writeError(w, err)
		return
	}
	var exp time.Time
	if tp.ExpiresAt != nil {
		exp = *tp.ExpiresAt
	}
	if err := s.Agent.PushToken(r.Context(), r.PathValue("name"), tp.Token, exp); err != nil {
		writeError(w, apiError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) sign(w http.ResponseWriter, r *http.Request) {
	var sr SignRequest
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
		writeError(w, apiError(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, Signature{Headers: nonNil(h)})
}

func (s *Server) putProfile(w http.ResponseWriter, r *http.Request) {
	var spec ProfileSpec
	if err := decodeBody(r, &spec); err != nil {
		writeError(w, err)
		return
	}
	pc := spec.ProfileConfig
	if err := s.Agent.PutProfile(r.Context(), r.PathValue("name"), &pc, spec.Secret); err != nil {
		writeError(w, apiError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteProfile(w http.ResponseWriter, r *http.Request) {
	if err := s.Agent.DeleteProfile(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, apiError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
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
	send := func(e Event) bool {
		if err := enc.Encode(e); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if initial, _ := strconv.ParseBool(r.URL.Query().Get("initial")); initial {
		now := time.Now().UTC()
		for _, p := range s.Agent.Profiles() {
			if !send(Event{Type: "current", Profile: wireProfile(p), Time: now}) {
				return
			}
		}
	}
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
			if !send(Event{Type: e.Type, Profile: wireProfile(e.Profile), Time: e.Time.UTC()}) {
				return
			}
		}
	}
}

func wireProfile(i agent.ProfileInfo) Profile {
	p := Profile{
		Name:      i.Name,
		Provider:  i.Provider,
		State:     string(i.State),
		ExpiresAt: apiTime(i.ExpiresAt),
		Hosts:     i.Hosts,
		Username:  i.Username,
		LastError: i.LastError,

		Capabilities: i.Capabilities,
	}
	if p.Hosts == nil {
		p.Hosts = []string{}
	}
	if i.Login != nil {
		p.Login = wireChallenge(i.Login)
	}
	return p
}

func wireChallenge(c *providers.Challenge) *LoginChallenge {
	return &LoginChallenge{
		UserCode:                c.UserCode,
		VerificationURI:         c.VerificationURI,
		VerificationURIComplete: c.VerificationURIComplete,
		ExpiresAt:               c.ExpiresAt.UTC().Truncate(time.Second),
		Interval:                int(c.Interval / time.Second),
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func minValidParam(r *http.Request) (time.Duration, *Error) {
	raw := r.URL.Query().Get("min_valid")
	if raw == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(raw, 10, 32)
	if err != nil || n < 0 {
		return 0, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest,
			Message: fmt.Sprintf("min_valid must be a whole number of seconds, got %q", raw)}
	}
	return time.Duration(n) * time.Second, nil
}

func parseTarget(raw string) (*url.URL, *Error) {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || u.Scheme == "" || u.Host == "" {
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest,
			Message: fmt.Sprintf("url must be an absolute URL like https://api.example.com/path, got %q", raw)}
	}
	return u, nil
}

func decodeBody(r *http.Request, v any) *Error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge()
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest,
			Message: "request body is not valid JSON for this endpoint: " + err.Error()}
	}
	if dec.More() {
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "request body holds more than one JSON value"}
	}
	return nil
}

// apiError maps an agent error to the API's error code and status.
func apiError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ce *agent.ConfigError
	var pce *providers.ConfigError
	for _, m := range []struct {
		target error
		status int
		code   string
	}{
		{agent.ErrUnknownProfile, http.StatusNotFound, CodeUnknownProfile},
		{agent.ErrNoProfile, http.StatusNotFound, CodeNoProfile},
		{agent.ErrBadRequest, http.StatusBadRequest, CodeBadRequest},
		{agent.ErrForbidden, http.StatusForbidden, CodeForbidden},
		{agent.ErrNeedsLogin, http.StatusUnauthorized, CodeNeedsLogin},
		{agent.ErrLoginPending, http.StatusConflict, CodeLoginPending},
		{agent.ErrProvider, http.StatusBadGateway, CodeProviderError},
		{agent.ErrUnavailable, http.StatusServiceUnavailable, CodeUnavailable},
		{context.DeadlineExceeded, http.StatusServiceUnavailable, CodeUnavailable},
	} {
		if errors.Is(err, m.target) {
			return &Error{Status: m.status, Code: m.code, Message: err.Error()}
		}
	}
	if errors.As(err, &ce) || errors.As(err, &pce) {
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: err.Error()}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, errorBody{Error: e})
}
