// Package loopback runs the browser's side of an OAuth browser login on a loopback address
// as RFC 8252 §7.3 describes: a one-shot HTTP server on 127.0.0.1 that serves the login's
// start page and receives the redirect that ends it. The browser is opened at the start
// page (StartURL), never at the authorization request itself: a command line is readable
// by every user of the machine, and the authorization request's state and PKCE challenge
// would let another user deliver a redirect of their own login (login CSRF). The start page
// answers once with a redirect to the authorization request and a cookie for this origin;
// only a redirect that carries that cookie (and the login's state) is accepted, and a
// second browser at the start page ends the login. On Linux, connections from another
// user's programs are refused outright. It knows nothing of OAuth beyond the redirect's
// parameters: the provider that started the login exchanges the code. Nothing it writes to
// a log, an error or a page holds the code, the state or the cookie.
package loopback

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits on what reaches the listener.
const (
	// ReadTimeout bounds how long a client may take to send its request; a slow or
	// silent connection is dropped and holds up nothing else.
	ReadTimeout = 5 * time.Second
	// FinishWait is how long the redirect's page waits for the login's outcome (the code
	// exchange) before it says the login goes on in authagent.
	FinishWait = 60 * time.Second
	// MaxHeaderBytes caps a request's line and headers; an authorization response is far
	// smaller.
	MaxHeaderBytes = 64 << 10
	// shutdownWait bounds how long Close waits for pages still being written.
	shutdownWait = 2 * time.Second
)

// Options say where to listen and what to accept.
type Options struct {
	// Ports are tried in order; the first that is free is used. None, or 0, is an
	// ephemeral port chosen by the system.
	Ports []int
	// Path is the redirect URI's path; "" is "/".
	Path string
	// State is the state parameter a redirect must carry (RFC 6749 §10.12). Required.
	State string
	// Name says what logs in, for the pages ("profile work").
	Name string
}

// StartPath is the path of the login's start page; Options.Path may not be it.
const StartPath = "/start"

// ErrStartReused is Wait's error when a second browser, or another program that read the
// start page's address, opened the start page: the login ends rather than let whoever
// signs in there log this one in.
var ErrStartReused = errors.New("the login's start page was opened a second time, by a browser without the first one's cookie; " +
	"another program may have read its address, so the login was ended to keep anyone else's sign-in from completing it")

// Listener is a loopback HTTP server waiting for one redirect. Close it when the login
// ends, whatever the outcome.
type Listener struct {
	ln   net.Listener
	srv  *http.Server
	opts Options
	port int
	got  chan *Redirect // the one valid redirect

	cookie string // the start page's cookie: name and value
	secret string
	uid    int // this process's user; connections of others are refused where that can be told

	mu      sync.Mutex
	target  string        // where the start page sends the browser; "" until Start
	started bool          // the start page was served (its cookie set)
	taken   bool          // a valid redirect arrived; every later request gets 400
	reused  chan struct{} // closed when a second browser opened the start page
	closing chan struct{} // closed by Close
	once    sync.Once
	served  chan struct{} // closed when Serve returned
}

// Redirect is the authorization response that reached the listener (RFC 6749 §4.1.2): a
// code, or the authorization server's error. Finish answers the browser.
type Redirect struct {
	Code             string
	Error            string // the authorization server's error code, "" when Code is set
	ErrorDescription string
	// Issuer is the iss parameter (RFC 9207), "" when the server sent none.
	Issuer string

	outcome chan error
}

// Finish shows the browser the login's outcome: that it worked (err == nil), or err's
// message. Only the first call counts. err's message is shown as text; it must hold no
// secret.
func (r *Redirect) Finish(err error) {
	select {
	case r.outcome <- err:
	default:
	}
}

// Listen starts listening on 127.0.0.1 at the first free port of opts.Ports. It fails
// when none is free, naming the ports.
func Listen(opts Options) (*Listener, error) {
	if opts.State == "" {
		return nil, errors.New("loopback: no state")
	}
	if opts.Path == "" {
		opts.Path = "/"
	}
	if !strings.HasPrefix(opts.Path, "/") {
		return nil, fmt.Errorf("loopback: path %q does not start with /", opts.Path)
	}
	if opts.Path == StartPath {
		return nil, fmt.Errorf("loopback: path %s is the login's start page", StartPath)
	}
	ports := opts.Ports
	if len(ports) == 0 {
		ports = []int{0}
	}
	var ln net.Listener
	var errs []error
	for _, port := range ports {
		var err error
		if ln, err = net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			break
		}
		errs = append(errs, err)
	}
	if ln == nil {
		return nil, fmt.Errorf("no port for the login's redirect is free on 127.0.0.1 (tried %s; another login, or another program, may hold it): %w",
			portList(ports), errors.Join(errs...))
	}
	port := ln.Addr().(*net.TCPAddr).Port
	l := &Listener{
		ln:   ln,
		opts: opts,
		port: port,
		got:  make(chan *Redirect, 1),
		// Cookies are not told apart by port: each login's has a name of its own, so that
		// two logins at once (two profiles) do not overwrite each other's.
		cookie:  "authagent_login_" + strconv.Itoa(port),
		secret:  rand.Text(),
		uid:     os.Getuid(),
		reused:  make(chan struct{}),
		closing: make(chan struct{}),
		served:  make(chan struct{}),
	}
	l.srv = &http.Server{
		Handler:           l,
		ReadHeaderTimeout: ReadTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      FinishWait + ReadTimeout,
		IdleTimeout:       ReadTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		// net/http's own messages could quote a request line, which holds the code.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(l.served)
		l.srv.Serve(ln)
	}()
	return l, nil
}

func portList(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
		if p == 0 {
			s[i] = "an ephemeral port"
		}
	}
	return strings.Join(s, ", ")
}

// Port is the port the listener got.
func (l *Listener) Port() int { return l.port }

// RedirectURI is the redirect_uri to send in the authorization request:
// http://127.0.0.1:PORT/PATH.
func (l *Listener) RedirectURI() string {
	return "http://127.0.0.1:" + strconv.Itoa(l.port) + l.opts.Path
}

// Start sets the page the start page sends the browser to (the authorization request)
// and returns the start page's address, http://127.0.0.1:PORT/start: the one to open in
// the browser, print, or hand to clients. Call it once, before anyone learns the address.
func (l *Listener) Start(target string) string {
	l.mu.Lock()
	l.target = target
	l.mu.Unlock()
	return l.origin() + StartPath
}

func (l *Listener) origin() string { return "http://127.0.0.1:" + strconv.Itoa(l.port) }

// Wait returns the one valid redirect; ErrStartReused when a second browser opened the
// start page first (the login must end); or ctx's error when ctx ends first.
func (l *Listener) Wait(ctx context.Context) (*Redirect, error) {
	select {
	case r := <-l.got:
		return r, nil
	case <-l.reused:
		return nil, ErrStartReused
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops listening. A page still waiting for its outcome says that the login ended
// in authagent; pages being written get a moment to finish.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.closing)
		ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
		defer cancel()
		if err := l.srv.Shutdown(ctx); err != nil {
			l.srv.Close()
		}
		<-l.served
	})
	return nil
}

// ServeHTTP serves the start page, accepts the one redirect that carries the login's
// state and cookie, and answers everything else with 400 (403 for another user's
// program).
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer") // the address bar holds the code
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if uid, err := peerUID(r, l.port); err == nil && uid != l.uid {
		// Another user's program (it read the address from a command line, say): it gets
		// nothing, and the login goes on for its owner.
		writePage(w, http.StatusForbidden, page{Title: "Not your login", Message: "this login belongs to another user of this machine."})
		return
	}
	if r.URL.Path == StartPath {
		l.start(w, r)
		return
	}
	red, why := l.accept(r)
	if red == nil {
		writePage(w, http.StatusBadRequest, page{Title: "Not the login authagent waits for", Message: why, Name: l.opts.Name})
		return
	}
	l.got <- red // cap 1, and only one redirect is ever accepted
	var outcome error
	timer := time.NewTimer(FinishWait)
	defer timer.Stop()
	select {
	case outcome = <-red.outcome:
	case <-l.closing:
		// The login finished and closed the listener; its outcome, when it gave one,
		// is already in the channel (Finish comes before Close), and select picks at
		// random among ready cases: take it first.
		outcome = finished(red, errEnded)
	case <-timer.C:
		outcome = finished(red, errEnded)
	case <-r.Context().Done():
		return
	}
	switch {
	case outcome == nil:
		writePage(w, http.StatusOK, page{Title: "Logged in", Message: "authagent is logged in to " + l.opts.Name + ".", Name: l.opts.Name, OK: true})
	case errors.Is(outcome, errEnded):
		writePage(w, http.StatusOK, page{Title: "Back to authagent", Message: "The login goes on (or ended) in authagent: `authagent list` or the tray shows how it went.", Name: l.opts.Name})
	default:
		writePage(w, http.StatusBadRequest, page{Title: "Login failed", Message: outcome.Error(), Name: l.opts.Name})
	}
}

var errEnded = errors.New("the login ended in authagent")

// finished is red's outcome when the login gave one already, else otherwise.
func finished(red *Redirect, otherwise error) error {
	select {
	case err := <-red.outcome:
		return err
	default:
		return otherwise
	}
}

// start serves the start page: the first time, a redirect to the target with the login's
// cookie; again to the browser that holds the cookie (the login page opened once more);
// to any other, the end of the login.
func (l *Listener) start(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writePage(w, http.StatusBadRequest, page{Title: "Not the login authagent waits for", Message: "the start page takes a GET request; this was " + r.Method + "."})
		return
	}
	port := strconv.Itoa(l.port)
	switch strings.ToLower(r.Host) {
	case "127.0.0.1:" + port:
	case "localhost:" + port:
		// The cookie must be 127.0.0.1's, where the redirect comes back.
		http.Redirect(w, r, l.origin()+StartPath, http.StatusFound)
		return
	default:
		writePage(w, http.StatusBadRequest, page{Title: "Not the login authagent waits for", Message: "this address is only for the login at http://127.0.0.1:" + port + "."})
		return
	}
	l.mu.Lock()
	target, own := l.target, l.hasCookie(r)
	switch {
	case target == "":
		l.mu.Unlock()
		writePage(w, http.StatusBadRequest, page{Title: "Not the login authagent waits for", Message: "this login has no start page yet."})
		return
	case l.reusedLocked() || (l.started && !own):
		// A second browser, or a program that read the address: whoever signs in there
		// must not complete this login, so it ends. The first browser's redirect, should
		// it come now, is refused too.
		l.endReusedLocked()
		l.mu.Unlock()
		writePage(w, http.StatusBadRequest, page{Title: "Login ended", Message: "This login's start page was already opened in another browser, or by another program that may have read its address, so authagent ended the login: otherwise whoever signs in there could complete it. Start the login again in authagent.", Name: l.opts.Name})
		return
	case l.taken:
		l.mu.Unlock()
		writePage(w, http.StatusBadRequest, page{Title: "Back to authagent", Message: "This login already received its redirect: `authagent list` or the tray shows how it went.", Name: l.opts.Name})
		return
	}
	l.started = true
	l.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: l.cookie, Value: l.secret, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, target, http.StatusFound)
}

// Reused reports whether a second browser opened the start page: a login that got its
// redirect meanwhile must not be completed either.
func (l *Listener) Reused() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reusedLocked()
}

func (l *Listener) reusedLocked() bool {
	select {
	case <-l.reused:
		return true
	default:
		return false
	}
}

func (l *Listener) endReusedLocked() {
	if !l.reusedLocked() {
		close(l.reused)
	}
}

// hasCookie reports whether r carries the start page's cookie.
func (l *Listener) hasCookie(r *http.Request) bool {
	for _, c := range r.CookiesNamed(l.cookie) {
		if subtle.ConstantTimeCompare([]byte(c.Value), []byte(l.secret)) == 1 {
			return true
		}
	}
	return false
}

// accept checks that r is the redirect the login waits for, and takes it; otherwise it
// says why not.
func (l *Listener) accept(r *http.Request) (*Redirect, string) {
	if r.Method != http.MethodGet {
		return nil, "authagent waits for the identity provider's redirect, a GET request; this was " + r.Method + "."
	}
	port := strconv.Itoa(l.port)
	if host := strings.ToLower(r.Host); host != "127.0.0.1:"+port && host != "localhost:"+port {
		// A page elsewhere that made the browser come here (DNS rebinding) names its own host.
		return nil, "this address is only for the redirect to http://127.0.0.1:" + port + "."
	}
	if r.URL.Path != l.opts.Path {
		return nil, "authagent waits for the redirect at " + l.opts.Path + ", not at this path."
	}
	q := r.URL.Query()
	for _, k := range []string{"state", "code", "error", "iss"} {
		if len(q[k]) > 1 {
			return nil, "the redirect carries " + k + " more than once."
		}
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(l.opts.State)) != 1 {
		return nil, "the redirect's state does not match the login authagent started, so it does not answer that login (RFC 6749 §10.12). " +
			"If you did not come here from authagent's login page, close this tab; otherwise start the login again."
	}
	if q.Get("code") == "" && q.Get("error") == "" {
		return nil, "the redirect carries neither a code nor an error."
	}
	if !l.hasCookie(r) {
		return nil, "the redirect does not come from the browser that opened authagent's start page for this login (it carries no cookie of that page), so it does not answer that login. " +
			"Open the login in the same browser from the address authagent shows (http://127.0.0.1:" + port + StartPath + "), with cookies allowed for 127.0.0.1; if you did not start a login, close this tab."
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reusedLocked() {
		return nil, "this login was ended because its start page was opened a second time; start the login again in authagent."
	}
	if l.taken {
		return nil, "this login already received its redirect; a second one is refused."
	}
	l.taken = true
	return &Redirect{
		Code:             q.Get("code"),
		Error:            q.Get("error"),
		ErrorDescription: q.Get("error_description"),
		Issuer:           q.Get("iss"),
		outcome:          make(chan error, 1),
	}, ""
}

type page struct {
	Title, Message, Name string
	OK                   bool
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} – authagent</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:38em;margin:4em auto;padding:0 1em;color:#222}h1{font-size:1.4em}{{if .OK}}h1{color:#1a7f37}{{else}}h1{color:#b42318}{{end}}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p><p>You can close this tab.</p></body></html>
`))

func writePage(w http.ResponseWriter, status int, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	pageTemplate.Execute(w, p)
}
