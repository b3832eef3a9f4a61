package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authagent/authagent/providers"
)

// Per-use confirmation: a profile with confirm set has the agent ask the user (through a
// Confirmer) before it serves a credential, an ID token or a signature. The question waits
// on a goroutine of its own with no lock of the agent or the profile held, so it blocks
// neither other profiles nor other callers; concurrent requests of one program for one
// profile share one question.

// Confirmer asks the user whether a caller may use a profile. Confirm returns true when the
// user allowed it and false with a nil error when the user denied it. It returns an error
// wrapping ErrNoAnswer when the question went unanswered (it expired, or ctx ended: ctx
// carries the profile's confirm_timeout as its deadline), and any other error when the
// user could not be asked at all (no notification server, none that shows actions). It
// must return soon after ctx ends.
type Confirmer interface {
	Confirm(ctx context.Context, req ConfirmRequest) (bool, error)
}

// ConfirmRequest is what the user is asked about.
type ConfirmRequest struct {
	Profile string
	// Operation is what the caller asks for: OpCredential, OpIDToken or OpSign.
	Operation string
	// Host is the host (and port, if any) of the URL the token is for, or of the request
	// to sign; "" when the caller named none.
	Host string
	// Caller is who asks; nil when unknown.
	Caller *Caller
}

// The operations a ConfirmRequest names.
const (
	OpCredential = "credential"
	OpIDToken    = "id_token"
	OpSign       = "sign"
)

// ErrNoAnswer is what a Confirmer returns (wrapped) when the user did not answer in time.
var ErrNoAnswer = errors.New("no answer")

// Confirmation defaults; a profile's confirm_window and confirm_timeout override them.
const (
	DefaultConfirmWindow  = 10 * time.Minute
	DefaultConfirmTimeout = 30 * time.Second
)

// Who names the caller for the user: "/usr/bin/python3 (pid 1234)", or with its parent
// when known "/usr/bin/curl (pid 1234, run by /usr/bin/bash, pid 1200)"; "an unknown
// program (pid 1234)" when its executable is unknown, "an unknown program" when nothing is
// known. A path whose file was replaced since the process started it is followed by
// "(deleted)". A path with control characters is quoted, so that it cannot forge the rest
// of a question.
func (r ConfirmRequest) Who() string {
	c := r.Caller
	if c == nil || c.PID == 0 && c.Exe == "" {
		return "an unknown program"
	}
	who := "an unknown program"
	if c.Exe != "" {
		who = printable(c.Exe)
		if c.ExeDeleted {
			who += " (deleted)"
		}
	}
	var about []string
	if c.PID != 0 {
		about = append(about, fmt.Sprintf("pid %d", c.PID))
	}
	if c.ParentExe != "" {
		about = append(about, "run by "+printable(c.ParentExe))
		if c.ParentPID != 0 {
			about = append(about, fmt.Sprintf("pid %d", c.ParentPID))
		}
	}
	if len(about) > 0 {
		who += " (" + strings.Join(about, ", ") + ")"
	}
	return who
}

// What names what is asked for: "the token of profile work", "the ID token of profile
// work", "a signature of profile dci".
func (r ConfirmRequest) What() string {
	switch r.Operation {
	case OpIDToken:
		return "the ID token of profile " + r.Profile
	case OpSign:
		return "a signature of profile " + r.Profile
	}
	return "the token of profile " + r.Profile
}

// Question is the whole question, one line: "/usr/bin/curl (pid 42) asks for the token of
// profile work, for api.example.com."
func (r ConfirmRequest) Question() string {
	q := r.Who() + " asks for " + r.What()
	if r.Host != "" {
		q += ", for " + printable(r.Host)
	}
	return q + "."
}

func printable(s string) string {
	for _, r := range s {
		if !strconv.IsGraphic(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

// internalKey marks a context of the agent's own requests (a token exchange's
// subject_profile), which are not asked about.
type internalKey struct{}

func internalContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, internalKey{}, true)
}

// checkConfirm checks a profile's confirm keys.
func checkConfirm(pc *providers.ProfileConfig) error {
	switch pc.Confirm {
	case "", providers.ConfirmAlways, providers.ConfirmOncePerExe:
	default:
		return &providers.ConfigError{Key: "confirm", Message: fmt.Sprintf(`%q: want true (ask before every use), "once-per-exe" (ask once per program, then remember for confirm_window) or false`, string(pc.Confirm))}
	}
	if pc.ConfirmWindow != 0 && pc.Confirm != providers.ConfirmOncePerExe {
		return &providers.ConfigError{Key: "confirm_window", Message: `only used with confirm = "once-per-exe"; set that, or remove confirm_window`}
	}
	if pc.ConfirmTimeout != 0 && pc.Confirm == "" {
		return &providers.ConfigError{Key: "confirm_timeout", Message: `only used with confirm = true or "once-per-exe"; set confirm, or remove confirm_timeout`}
	}
	return nil
}

// confirmState is a profile's remembered approvals and the questions being asked. A
// changed profile is a new profile, so a config change asks again.
type confirmState struct {
	mu       sync.Mutex
	approved map[exeID]time.Time // once-per-exe: approved until
	asking   map[string]*question
	tickets  map[string]ticket // questions handed to callers to ask on their terminal, by id
}

// exeID is an executable as the kernel knows it: a binary replaced at the same path has
// another inode, so it is another executable. The path of the program that ran it is part
// of it: approving `authagent token` run by git approves no other program that runs it.
type exeID struct {
	path     string
	dev, ino uint64
	parent   string
}

type question struct {
	done      chan struct{}
	waiters   int // requests that wait for it; under confirmState.mu
	ok        bool
	cannotAsk bool // the Confirmer could not ask at all (err says why)
	err       error
}

// confirm asks the user, when p's config says to, whether the caller ctx carries may have
// what op names; host is where the token goes or the signed request goes, "" when not
// given. It returns nil when the request may go on, and an error wrapping ErrDenied (or
// ErrUnavailable when the agent is closing, or ctx's error when the caller left) when not.
func (a *Agent) confirm(ctx context.Context, p *profile, op, host string) error {
	mode := p.cfg.Confirm
	if mode == "" || ctx.Value(internalKey{}) != nil {
		return nil
	}
	c := CallerFrom(ctx)
	req := ConfirmRequest{Profile: p.name, Operation: op, Host: host, Caller: c}
	term, _ := ctx.Value(terminalKey{}).(TerminalAnswer)
	known := c != nil && c.Exe != ""
	var exe exeID
	var flightKey string
	if known {
		exe = exeID{path: c.Exe, dev: c.Dev, ino: c.Ino, parent: c.ParentExe}
	}
	switch {
	case mode == providers.ConfirmOncePerExe && known:
		flightKey = fmt.Sprintf("exe %d:%d:%q:%q", exe.dev, exe.ino, exe.path, exe.parent)
	case c != nil && c.PID != 0:
		// Asked every time: only one process's concurrent requests share the question,
		// since it names that process.
		flightKey = fmt.Sprintf("pid %d %d:%d:%q", c.PID, c.Dev, c.Ino, c.Exe)
	}
	remember := mode == providers.ConfirmOncePerExe && known
	if term.ID != "" {
		return a.terminalAnswer(p, req, term, remember, exe)
	}

	st := &p.confirm
	st.mu.Lock()
	if remember {
		if until, ok := st.approved[exe]; ok {
			if a.clock.Now().Before(until) {
				st.mu.Unlock()
				return nil
			}
			delete(st.approved, exe)
		}
	}
	q := st.asking[flightKey]
	if q == nil || flightKey == "" {
		q = &question{done: make(chan struct{})}
		if flightKey != "" {
			if st.asking == nil {
				st.asking = map[string]*question{}
			}
			st.asking[flightKey] = q
		}
		go a.ask(ctx, p, q, flightKey, req, remember, exe)
	}
	q.waiters++
	st.mu.Unlock()

	select {
	case <-q.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	switch {
	case q.cannotAsk && term.CanAsk && isSelf(c):
		return a.ticket(p, req, exe)
	case q.cannotAsk && term.Handover:
		// No id: the program that asks is the one the command is handed to.
		return &ConfirmRequiredError{Question: req.Question()}
	}
	return q.err
}

// ask puts one question to the Confirmer and records the answer in q. It runs on the
// agent's context (Close ends it) with the values of the first request that asked.
func (a *Agent) ask(reqCtx context.Context, p *profile, q *question, flightKey string, req ConfirmRequest, remember bool, exe exeID) {
	timeout := p.cfg.ConfirmTimeout.D()
	if timeout <= 0 {
		timeout = DefaultConfirmTimeout
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), timeout)
	defer cancel()
	stop := context.AfterFunc(a.ctx, cancel)
	defer stop()

	var ok bool
	var err error
	if a.opts.Confirmer == nil {
		err = errors.New("this agent was started without a way to ask")
	} else {
		ok, err = a.opts.Confirmer.Confirm(ctx, req)
	}
	switch {
	case ok:
		a.log.Info("use allowed", "profile", p.name, "operation", req.Operation, "caller", req.Who())
	case a.ctx.Err() != nil:
		q.err = providers.Mark(ErrUnavailable, fmt.Errorf("the agent stopped before %s was allowed %s", req.Who(), req.What()))
	case err == nil:
		q.err = providers.Mark(ErrDenied, fmt.Errorf("the user denied %s %s; the next request asks again", req.Who(), req.What()))
	case errors.Is(err, ErrNoAnswer) || errors.Is(err, context.DeadlineExceeded):
		q.err = providers.Mark(ErrDenied, fmt.Errorf("no answer within %s to whether %s may have %s; answer the desktop notification when it shows, or raise confirm_timeout of profile %s",
			timeout, req.Who(), req.What(), p.name))
	default:
		q.cannotAsk = true
		q.err = providers.Mark(ErrDenied, fmt.Errorf("profile %s asks before each use (confirm = %q), but the agent could not ask whether %s may have %s: %w; "+
			"run a desktop notification server that shows actions (Allow/Deny) on the agent's session bus, run the authagent command on a terminal, or remove confirm from profile %s",
			p.name, string(p.cfg.Confirm), req.Who(), req.What(), err, p.name))
	}
	switch {
	case q.cannotAsk:
		a.log.Info("cannot ask the user through the desktop", "profile", p.name, "operation", req.Operation, "caller", req.Who(), "error", err)
	case q.err != nil:
		a.log.Info("use denied", "profile", p.name, "operation", req.Operation, "caller", req.Who(), "error", q.err)
	}
	q.ok = ok

	st := &p.confirm
	st.mu.Lock()
	if ok && remember {
		window := p.cfg.ConfirmWindow.D()
		if window <= 0 {
			window = DefaultConfirmWindow
		}
		if st.approved == nil {
			st.approved = map[exeID]time.Time{}
		}
		st.approved[exe] = a.clock.Now().Add(window)
	}
	if flightKey != "" && st.asking[flightKey] == q {
		delete(st.asking, flightKey)
	}
	close(q.done)
	st.mu.Unlock()
}

// hostOf is target's host, "" for nil.
func hostOf(target *url.URL) string {
	if target == nil {
		return ""
	}
	return target.Host
}

// Confirmation on the caller's terminal: when no desktop notification can ask, an
// `authagent` command that runs on a terminal asks there itself. The agent hands it the
// question with a one-use id (ConfirmRequiredError), and takes the answer that comes back
// with that id only from the same process running the same executable, within the
// profile's confirm_timeout. Only a caller that runs the agent's own executable gets such
// a question: any other program could answer it without asking anyone.

// ErrConfirmRequired: the caller is to ask the user on its terminal (ConfirmRequiredError).
var ErrConfirmRequired = errors.New("confirm required")

// ConfirmRequiredError hands the caller the question to ask on its terminal; it sends the
// request again with ID and the answer (WithTerminal). Without an ID (a caller that said
// it can hand over) the caller hands its command to a program that can ask. It wraps
// ErrConfirmRequired.
type ConfirmRequiredError struct {
	ID       string
	Question string // ConfirmRequest.Question
}

func (e *ConfirmRequiredError) Error() string { return e.Question }
func (e *ConfirmRequiredError) Unwrap() error { return ErrConfirmRequired }

// TerminalAnswer is what a request says about asking on the caller's terminal; the socket
// server reads it from the request's headers.
type TerminalAnswer struct {
	CanAsk   bool   // the caller can ask the user on its terminal
	Handover bool   // the caller can hand its command over to a program that can ask
	ID       string // the id of the question the user answered there; "" for none
	Allow    bool   // the user's answer to ID
}

type terminalKey struct{}

// WithTerminal returns ctx carrying t.
func WithTerminal(ctx context.Context, t TerminalAnswer) context.Context {
	return context.WithValue(ctx, terminalKey{}, t)
}

type ticket struct {
	pid     int
	exe     exeID
	op      string
	expires time.Time
}

// maxTickets bounds the questions a profile keeps for answers from terminals.
const maxTickets = 64

// ticket hands req's question to its caller, to ask on its terminal.
func (a *Agent) ticket(p *profile, req ConfirmRequest, exe exeID) error {
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	timeout := p.cfg.ConfirmTimeout.D()
	if timeout <= 0 {
		timeout = DefaultConfirmTimeout
	}
	now := a.clock.Now()
	st := &p.confirm
	st.mu.Lock()
	if st.tickets == nil {
		st.tickets = map[string]ticket{}
	}
	for k, t := range st.tickets {
		if !now.Before(t.expires) {
			delete(st.tickets, k)
		}
	}
	if len(st.tickets) >= maxTickets {
		st.mu.Unlock()
		return providers.Mark(ErrDenied, fmt.Errorf("%d questions about profile %s wait for answers on terminals; answer them, or wait %s", len(st.tickets), p.name, timeout))
	}
	st.tickets[id] = ticket{pid: req.Caller.PID, exe: exe, op: req.Operation, expires: now.Add(timeout)}
	st.mu.Unlock()
	return &ConfirmRequiredError{ID: id, Question: req.Question()}
}

// terminalAnswer takes the answer to a question handed out by ticket; the question is used
// up whatever the answer.
func (a *Agent) terminalAnswer(p *profile, req ConfirmRequest, term TerminalAnswer, remember bool, exe exeID) error {
	now := a.clock.Now()
	st := &p.confirm
	st.mu.Lock()
	t, ok := st.tickets[term.ID]
	delete(st.tickets, term.ID)
	c := req.Caller
	valid := ok && c != nil && c.PID == t.pid && c.Exe != "" && exe == t.exe && t.op == req.Operation && now.Before(t.expires)
	if valid && term.Allow && remember {
		window := p.cfg.ConfirmWindow.D()
		if window <= 0 {
			window = DefaultConfirmWindow
		}
		if st.approved == nil {
			st.approved = map[exeID]time.Time{}
		}
		st.approved[exe] = now.Add(window)
	}
	st.mu.Unlock()
	switch {
	case !valid:
		a.log.Warn("refused an answer from a terminal", "profile", p.name, "caller", req.Who())
		return providers.Mark(ErrDenied, fmt.Errorf("the answer for profile %s fits no open question of %s: it is unknown, used, older than confirm_timeout, or from another process; the next request asks again", p.name, req.Who()))
	case !term.Allow:
		a.log.Info("use denied", "profile", p.name, "operation", req.Operation, "caller", req.Who(), "on", "terminal")
		return providers.Mark(ErrDenied, fmt.Errorf("the user denied %s %s (answered on the terminal); the next request asks again", req.Who(), req.What()))
	}
	a.log.Info("use allowed", "profile", p.name, "operation", req.Operation, "caller", req.Who(), "on", "terminal")
	return nil
}

// isSelf: c runs the agent's own executable (an authagent command), so it is the program
// that asks on its terminal.
func isSelf(c *Caller) bool {
	if c == nil || c.PID == 0 || c.Ino == 0 {
		return false
	}
	dev, ino, ok := selfExe()
	return ok && c.Dev == dev && c.Ino == ino
}
