package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/authagent/authagent/providers"
)

// Per-use confirmation: a profile with confirm set has the agent ask the user (through a
// Confirmer) before it serves a credential, an ID token or a signature, and before a
// client changes or removes the profile. The question waits on a goroutine of its own with
// no lock of the agent or the profile held, so it blocks neither other profiles nor other
// callers. Concurrent requests for one profile share one question only when its answer
// means the same for each: one executable under once-per-exe, or one process asking for
// the same thing for the same host under confirm = true; a signature is always asked for
// on its own. One caller process has at most maxQuestionsPerCaller questions open at once,
// and the agent at most maxQuestions.

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
	// Operation is what the caller asks for: OpCredential, OpIDToken, OpSign, OpChange or
	// OpRemove.
	Operation string
	// Host is the host (and port, if any) of the URL the token is for, or of the request
	// to sign; "" when the caller named none.
	Host string
	// Caller is who asks; nil when unknown.
	Caller *Caller
	// Action, with OpChange, names a change other than defining the profile anew or
	// storing its secret: ActionLogout, ActionPush or ActionLogin. "" otherwise.
	Action string
	// Trader, with OpChange, is a profile the caller asks to define whose definition
	// trades this profile's token (its subject_profile is this profile, or leads to it):
	// whoever may use Trader gets what this profile's token buys. TradesIDToken: it trades
	// this profile's ID token. "" for a change of this profile itself.
	Trader        string
	TradesIDToken bool
}

// The operations a ConfirmRequest names.
const (
	OpCredential = "credential"
	OpIDToken    = "id_token"
	OpSign       = "sign"
	OpChange     = "change" // define the profile anew, or store its secret
	OpRemove     = "remove"
)

// The changes a ConfirmRequest's Action names.
const (
	ActionLogout = "logout" // end the profile's login and revoke its grant
	ActionPush   = "push"   // push a token into the profile
	ActionLogin  = "login"  // start a login that replaces the profile's tokens
)

// maxQuestionsPerCaller bounds the questions one caller process (pid and start time; all
// callers the agent knows nothing of count as one) has open at once, and maxQuestions
// those of the whole agent, against a flood from many processes. A request that would open
// one more is denied at once; one that waits for a question open already opens none.
const (
	maxQuestionsPerCaller = 4
	maxQuestions          = 32
)

// openQuestions counts the questions an agent has open, in all and per caller process.
type openQuestions struct {
	mu    sync.Mutex
	n     int
	byPID map[procID]int
}

// procID names one process: a pid with its start time. The zero value stands for every
// caller whose pid is unknown.
type procID struct {
	pid   int
	start uint64
}

func procOf(c *Caller) procID {
	if c == nil {
		return procID{}
	}
	return procID{c.PID, c.Start}
}

// take counts one more open question of process id; "" when it may open it, else why not.
func (o *openQuestions) take(id procID) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.byPID[id] >= maxQuestionsPerCaller:
		return fmt.Sprintf("%d questions of this program wait for the user's answer already", maxQuestionsPerCaller)
	case o.n >= maxQuestions:
		return fmt.Sprintf("%d questions wait for the user's answer already", maxQuestions)
	}
	if o.byPID == nil {
		o.byPID = map[procID]int{}
	}
	o.n++
	o.byPID[id]++
	return ""
}

func (o *openQuestions) done(id procID) {
	o.mu.Lock()
	o.n--
	if o.byPID[id]--; o.byPID[id] <= 0 {
		delete(o.byPID, id)
	}
	o.mu.Unlock()
}

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
// "(deleted)", and one that names another file here than the one the process runs (a
// path made up in a mount namespace of its own) by "(not the file at that path here)". A
// path with control characters is quoted, so that it cannot forge the rest of a question.
func (r ConfirmRequest) Who() string {
	c := r.Caller
	if c == nil || c.PID == 0 && c.Exe == "" {
		return "an unknown program"
	}
	who := "an unknown program"
	if c.Exe != "" {
		who = printable(c.Exe)
		switch {
		case c.ExeDeleted:
			who += " (deleted)"
		case c.ExeMismatch:
			who += " (not the file at that path here)"
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

// Program is the file name of the caller's executable, for a title: "python3"; quoted
// like Who when it holds control characters; "an unknown program" when unknown.
func (r ConfirmRequest) Program() string {
	if r.Caller == nil || r.Caller.Exe == "" {
		return "an unknown program"
	}
	return printable(filepath.Base(r.Caller.Exe))
}

// What names what is asked for: "the token of profile work", "the ID token of profile
// work", "a signature of profile dci", "a change of profile work", "the removal of
// profile work", "a logout of profile work", "a token pushed into profile work", "a new
// login of profile work", "a definition of profile steal, which trades the token of
// profile work".
func (r ConfirmRequest) What() string {
	switch r.Operation {
	case OpIDToken:
		return "the ID token of profile " + r.Profile
	case OpSign:
		return "a signature of profile " + r.Profile
	case OpChange:
		switch {
		case r.Trader != "":
			return "a definition of profile " + r.Trader + ", which trades " + r.traded()
		case r.Action == ActionLogout:
			return "a logout of profile " + r.Profile
		case r.Action == ActionPush:
			return "a token pushed into profile " + r.Profile
		case r.Action == ActionLogin:
			return "a new login of profile " + r.Profile
		}
		return "a change of profile " + r.Profile
	case OpRemove:
		return "the removal of profile " + r.Profile
	}
	return "the token of profile " + r.Profile
}

func (r ConfirmRequest) traded() string {
	if r.TradesIDToken {
		return "the ID token of profile " + r.Profile
	}
	return "the token of profile " + r.Profile
}

// asks is what Question says the caller asks: "for the token of profile work", "to log
// out of profile work", "to define profile steal, which trades the token of profile
// work".
func (r ConfirmRequest) asks() string {
	if r.Operation == OpChange {
		switch {
		case r.Trader != "":
			return "to define profile " + r.Trader + ", which trades " + r.traded()
		case r.Action == ActionLogout:
			return "to log out of profile " + r.Profile
		case r.Action == ActionPush:
			return "to push a token into profile " + r.Profile
		case r.Action == ActionLogin:
			return "to start a login of profile " + r.Profile
		}
	}
	return "for " + r.What()
}

// about is what the request asks for, without who asks: two requests with the same about
// ask the same question of the same profile's user.
func (r ConfirmRequest) about() string {
	return fmt.Sprintf("%s %q %s %q %v", r.Operation, r.Host, r.Action, r.Trader, r.TradesIDToken)
}

// Question is the whole question, one line: "/usr/bin/curl (pid 42) asks for the token of
// profile work, for api.example.com.", "/usr/bin/python3 (pid 7) asks to log out of
// profile work."
func (r ConfirmRequest) Question() string {
	q := r.Who() + " asks " + r.asks()
	if r.Host != "" {
		q += ", for " + printable(r.Host)
	}
	return q + "."
}

// printable is s, or s quoted with strconv.QuoteToGraphic when it holds a control or
// other non-graphic character or invalid UTF-8 (which a D-Bus string may not carry), so
// that a program's name can neither forge the question nor stop it from being asked.
func printable(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsGraphic(r) {
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
// another inode, and one rewritten in place another ctime (which its owner cannot set
// back) and maybe size, so either is another executable. The path of the program that
// ran it is part of it: approving `authagent token` run by git approves no other program
// that runs it.
type exeID struct {
	path     string
	dev, ino uint64
	ctime    int64
	size     int64
	parent   string
}

type question struct {
	done      chan struct{}
	cancel    context.CancelFunc // withdraws the question
	waiters   int                // requests that wait for it; under confirmState.mu
	abandoned bool               // every waiter left: the answer counts for nobody; under confirmState.mu
	ok        bool
	cannotAsk bool // the Confirmer could not ask at all (err says why)
	err       error
}

// confirm asks the user, when p's config says to, whether the caller ctx carries may have
// what op names; host is where the token goes or the signed request goes, "" when not
// given. It returns nil when the request may go on, and an error wrapping ErrDenied (or
// ErrUnavailable when the agent is closing or p was redefined meanwhile, ErrUnknownProfile
// when p was removed meanwhile, or ctx's error when the caller left) when not.
func (a *Agent) confirm(ctx context.Context, p *profile, op, host string) error {
	return a.confirmAbout(ctx, p, ConfirmRequest{Operation: op, Host: host})
}

// confirmAbout is confirm for the question req names (its Profile and Caller are filled
// in here): a change with an Action, or a Trader.
func (a *Agent) confirmAbout(ctx context.Context, p *profile, req ConfirmRequest) error {
	if p.cfg.Confirm == "" || ctx.Value(internalKey{}) != nil {
		return nil
	}
	if err := a.askUser(ctx, p, req); err != nil {
		return err
	}
	// The answer is about p as it was defined when asked: not about a profile defined anew
	// under its name meanwhile, and not about none.
	a.mu.Lock()
	now := a.profiles.get(p.name)
	a.mu.Unlock()
	switch {
	case now == nil:
		return providers.Mark(ErrUnknownProfile, fmt.Errorf("profile %s was removed while the user was asked about it", p.name))
	case now != p:
		return providers.Mark(ErrUnavailable, fmt.Errorf("profile %s was defined anew while the user was asked about it; send the request again to be asked about the new definition", p.name))
	}
	return nil
}

func (a *Agent) askUser(ctx context.Context, p *profile, req ConfirmRequest) error {
	mode := p.cfg.Confirm
	c := CallerFrom(ctx)
	req.Profile, req.Caller = p.name, c
	op, host := req.Operation, req.Host
	term, _ := ctx.Value(terminalKey{}).(TerminalAnswer)
	known := c != nil && c.Exe != ""
	var exe exeID
	if known {
		exe = exeID{path: c.Exe, dev: c.Dev, ino: c.Ino, ctime: c.Ctime, size: c.Size, parent: c.ParentExe}
	}
	// A change or removal is always asked about: approving a program's use of a profile
	// does not approve it dropping the profile's confirm. An executable that is not the
	// file its path names here is asked about every time: the path does not say what runs.
	use := op == OpCredential || op == OpIDToken || op == OpSign
	remember := mode == providers.ConfirmOncePerExe && known && !c.ExeMismatch && use
	var flightKey string
	switch {
	case remember:
		flightKey = fmt.Sprintf("exe %d:%d:%d:%d:%q:%q", exe.dev, exe.ino, exe.ctime, exe.size, exe.path, exe.parent)
	case op == OpCredential || op == OpIDToken:
		if c != nil && c.PID != 0 {
			// Asked every time: only one process's concurrent requests for the same thing
			// for the same host share the question, since it names all of that. A
			// signature (each one a request of its own), a change and a removal are never
			// shared.
			flightKey = fmt.Sprintf("pid %d:%d %d:%d:%d:%d:%q %s %q", c.PID, c.Start, c.Dev, c.Ino, c.Ctime, c.Size, c.Exe, op, host)
		}
	}
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
		if full := a.questions.take(procOf(c)); full != "" {
			st.mu.Unlock()
			return providers.Mark(ErrDenied, fmt.Errorf("%s, so %s is not asked whether it may have %s; answer or dismiss them, then try again",
				full, req.Who(), req.What()))
		}
		timeout := p.cfg.ConfirmTimeout.D()
		if timeout <= 0 {
			timeout = DefaultConfirmTimeout
		}
		// The question runs on a context of its own: it outlives the request that asked
		// first when others wait for it too, and ends when the last of them leaves.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		q = &question{done: make(chan struct{}), cancel: cancel}
		if flightKey != "" {
			if st.asking == nil {
				st.asking = map[string]*question{}
			}
			st.asking[flightKey] = q
		}
		go a.ask(qctx, p, q, flightKey, req, remember, exe, timeout)
	}
	q.waiters++
	st.mu.Unlock()

	select {
	case <-q.done:
	case <-ctx.Done():
		st.mu.Lock()
		q.waiters--
		if q.waiters == 0 && !isClosed(q.done) {
			// Nobody waits for the answer any more: withdraw the question (the
			// notification closes), and let its answer approve nothing.
			q.abandoned = true
			q.cancel()
			if flightKey != "" && st.asking[flightKey] == q {
				delete(st.asking, flightKey)
			}
		}
		st.mu.Unlock()
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

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ask puts one question to the Confirmer and records the answer in q. ctx is the
// question's own (q.cancel ends it, and so does the agent's Close), with the values of the
// first request that asked and timeout as its deadline.
func (a *Agent) ask(ctx context.Context, p *profile, q *question, flightKey string, req ConfirmRequest, remember bool, exe exeID, timeout time.Duration) {
	defer a.questions.done(procOf(req.Caller))
	defer q.cancel()
	stop := context.AfterFunc(a.ctx, q.cancel)
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
		q.err = providers.Mark(ErrDenied, fmt.Errorf("profile %s asks before each use (confirm = %s), but the agent could not ask whether %s may have %s: %w; "+
			"run a desktop notification server that shows actions (Allow/Deny) on the agent's session bus, run the authagent command on a terminal, or remove confirm from profile %s",
			p.name, confirmWritten(p.cfg.Confirm), req.Who(), req.What(), err, p.name))
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
	if q.abandoned {
		a.log.Info("question withdrawn: every request that asked it left", "profile", p.name, "operation", req.Operation, "caller", req.Who())
	}
	if ok && remember && !q.abandoned {
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

// confirmWritten is m as the config file writes it: true, or "once-per-exe".
func confirmWritten(m providers.ConfirmMode) string {
	if m == providers.ConfirmAlways {
		return "true"
	}
	return strconv.Quote(string(m))
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
	start   uint64
	exe     exeID
	about   string // ConfirmRequest.about: the operation, host, action and trader asked about
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
	st.tickets[id] = ticket{pid: req.Caller.PID, start: req.Caller.Start, exe: exe, about: req.about(), expires: now.Add(timeout)}
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
	valid := ok && c != nil && c.PID == t.pid && c.Start == t.start && c.Exe != "" && exe == t.exe && t.about == req.about() && now.Before(t.expires)
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
		return providers.Mark(ErrDenied, fmt.Errorf("the answer for profile %s fits no open question of %s: it is unknown, used, older than confirm_timeout, from another process, or about another request (operation or host); the next request asks again", p.name, req.Who()))
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

// confirmChange asks the user, when profile name has confirm set, whether the caller ctx
// carries may change (OpChange) or remove (OpRemove) it: a program that could drop confirm
// unasked would make confirm worth nothing. It returns the profile asked about, nil when
// nothing was asked (no such profile, or no confirm), and confirm's errors.
func (a *Agent) confirmChange(ctx context.Context, name, op string) (*profile, error) {
	a.mu.Lock()
	p := a.profiles.get(name)
	a.mu.Unlock()
	if p == nil || p.cfg.Confirm == "" {
		return nil, nil
	}
	if err := a.confirm(ctx, p, op, ""); err != nil {
		return nil, err
	}
	return p, nil
}

// changeStillAllowed: profile name is the one confirmChange asked about, or one that asks
// about nothing. Called under editMu, right before the change, so that another
// definition made meanwhile is not changed on the answer about the old one.
func (a *Agent) changeStillAllowed(name string, asked *profile) error {
	a.mu.Lock()
	now := a.profiles.get(name)
	a.mu.Unlock()
	if now == asked || now == nil || now.cfg.Confirm == "" {
		return nil
	}
	return providers.Mark(ErrUnavailable, fmt.Errorf("profile %s was defined anew while the change was being asked about; try again", name))
}

// trade is a profile with confirm set whose token a definition trades, directly or down
// the chain of subject_profile: idToken when the link before it trades its ID token.
type trade struct {
	p       *profile
	idToken bool
}

// tradesOf lists the profiles with confirm set, among those served now, whose token a
// definition pc of profile name trades: its subject_profile, that profile's
// subject_profile, and so on, until the chain ends or leads back.
func (a *Agent) tradesOf(name string, pc *providers.ProfileConfig) []trade {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []trade
	seen := map[string]bool{name: true}
	for cur := pc; cur.SubjectProfile != "" && !seen[cur.SubjectProfile]; {
		seen[cur.SubjectProfile] = true
		p := a.profiles.get(cur.SubjectProfile)
		if p == nil {
			break
		}
		if p.cfg.Confirm != "" {
			t := cur.SubjectTokenType
			out = append(out, trade{p: p, idToken: t == "id_token" || t == "urn:ietf:params:oauth:token-type:id_token"})
		}
		cur = p.cfg
	}
	return out
}

// confirmTrades asks the user, for each profile with confirm set whose token the
// definition pc of profile name would trade (tradesOf), whether the caller ctx carries may
// define it so (OpChange with Trader): whoever may use profile name gets what that token
// buys, unasked. Every time, never remembered, whether name is new or replaced. It returns
// the profiles asked about, and confirm's errors.
func (a *Agent) confirmTrades(ctx context.Context, name string, pc *providers.ProfileConfig) ([]*profile, error) {
	var asked []*profile
	for _, t := range a.tradesOf(name, pc) {
		if err := a.confirmAbout(ctx, t.p, ConfirmRequest{Operation: OpChange, Trader: name, TradesIDToken: t.idToken}); err != nil {
			return nil, err
		}
		asked = append(asked, t.p)
	}
	return asked, nil
}

// tradesStillAllowed: every profile with confirm set whose token pc trades now is one
// confirmTrades asked about. Called under editMu, right before the change.
func (a *Agent) tradesStillAllowed(ctx context.Context, name string, pc *providers.ProfileConfig, asked []*profile) error {
	if ctx.Value(internalKey{}) != nil {
		return nil
	}
	for _, t := range a.tradesOf(name, pc) {
		if !slices.Contains(asked, t.p) {
			return providers.Mark(ErrUnavailable, fmt.Errorf("profile %s, whose token profile %s would trade, was defined anew while the change was being asked about; try again", t.p.name, name))
		}
	}
	return nil
}
