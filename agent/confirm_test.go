package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authagent/authagent/agent/audit"
	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
)

// fakeConfirmer answers questions with answer, and records them. Fault injection: the
// real one (package confirm) is tested against a notification server on a private bus.
type fakeConfirmer struct {
	mu     sync.Mutex
	asked  []ConfirmRequest
	calls  chan ConfirmRequest // when not nil, each question is sent here as it is asked
	answer func(ctx context.Context, req ConfirmRequest) (bool, error)
}

func (f *fakeConfirmer) Confirm(ctx context.Context, req ConfirmRequest) (bool, error) {
	f.mu.Lock()
	f.asked = append(f.asked, req)
	calls := f.calls
	f.mu.Unlock()
	if calls != nil {
		calls <- req
	}
	return f.answer(ctx, req)
}

// next waits for the next question (calls must be set); a question that never comes
// fails the test instead of hanging it.
func (f *fakeConfirmer) next(t *testing.T) ConfirmRequest {
	t.Helper()
	select {
	case req := <-f.calls:
		return req
	case <-time.After(10 * time.Second):
		t.Fatal("no question was asked")
	}
	return ConfirmRequest{}
}

func (f *fakeConfirmer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.asked)
}

func allow(context.Context, ConfirmRequest) (bool, error) { return true, nil }

// confirmProvider hands out a fixed token; it signs, and it may have ID tokens.
type confirmProvider struct{}

func (confirmProvider) Fetch(context.Context) (*providers.Credential, error) {
	return &providers.Credential{TokenType: "Bearer", Token: "tok"}, nil
}

type signConfirmProvider struct{ confirmProvider }

func (signConfirmProvider) Sign(context.Context, providers.SignRequest) (map[string]string, error) {
	return map[string]string{"Authorization": "signed"}, nil
}

type idConfirmProvider struct{ confirmProvider }

func (idConfirmProvider) IDTokens() error { return nil }

// newConfirmAgent serves profiles (provider "fake", or "signer" / "id" for the other
// kinds) with c as the Confirmer (nil for none). The Env each profile's provider got is
// in envs.
func newConfirmAgent(t *testing.T, c Confirmer, profiles map[string]*providers.ProfileConfig) (*Agent, *fakeClock, map[string]providers.Env) {
	t.Helper()
	clock := newFakeClock()
	var mu sync.Mutex
	envs := map[string]providers.Env{}
	factory := func(p providers.Provider) providers.Factory {
		return func(_ *providers.ProfileConfig, env providers.Env) (providers.Provider, error) {
			mu.Lock()
			envs[env.Name] = env
			mu.Unlock()
			return p, nil
		}
	}
	for _, pc := range profiles {
		if pc.Provider == "" {
			pc.Provider = "fake"
		}
	}
	a, err := New(Options{
		Config: &Config{Path: filepath.Join(t.TempDir(), "config.toml"), Profiles: profiles},
		Store:  NewMemoryStore(),
		Providers: map[string]providers.Factory{
			"fake":   factory(confirmProvider{}),
			"signer": factory(signConfirmProvider{}),
			"id":     factory(idConfirmProvider{}),
		},
		Clock:     clock,
		Jitter:    func() float64 { return 0.5 },
		Confirmer: c,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, clock, envs
}

func python(pid int) *Caller {
	return &Caller{PID: pid, UID: os.Getuid(), Exe: "/usr/bin/python3", Dev: 8, Ino: 1001}
}

func as(c *Caller) context.Context { return WithCaller(context.Background(), c) }

// TestConfirmAnswers: allowed serves the token; denied, no answer in time, no way to ask
// and a Confirmer that fails are each ErrDenied with a message that names the program,
// the profile and what to do. The Confirmer is asked what the caller asks for.
func TestConfirmAnswers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		confirmer Confirmer // nil: none
		timeout   providers.Duration
		want      string // "" for allowed; else a part of the error
	}{
		{"allowed", &fakeConfirmer{answer: allow}, 0, ""},
		{"denied", &fakeConfirmer{answer: func(context.Context, ConfirmRequest) (bool, error) { return false, nil }}, 0,
			"the user denied /usr/bin/python3 (pid 1234) the token of profile work"},
		{"timeout", &fakeConfirmer{answer: func(ctx context.Context, _ ConfirmRequest) (bool, error) {
			<-ctx.Done() // the notification stays open until the agent's deadline
			return false, fmt.Errorf("%w: %w", ErrNoAnswer, ctx.Err())
		}}, providers.Duration(20 * time.Millisecond),
			"no answer within 20ms to whether /usr/bin/python3 (pid 1234) may have the token of profile work"},
		{"expired", &fakeConfirmer{answer: func(context.Context, ConfirmRequest) (bool, error) {
			return false, fmt.Errorf("the notification expired: %w", ErrNoAnswer)
		}}, 0, "no answer within 30s"},
		{"no confirmer", nil, 0, "but the agent could not ask whether /usr/bin/python3 (pid 1234) may have the token of profile work: " +
			"this agent was started without a way to ask; run a desktop notification server"},
		{"cannot ask", &fakeConfirmer{answer: func(context.Context, ConfirmRequest) (bool, error) {
			return false, errors.New("the notification server shows no actions")
		}}, 0, "could not ask whether /usr/bin/python3 (pid 1234) may have the token of profile work: the notification server shows no actions; " +
			"run a desktop notification server that shows actions (Allow/Deny) on the agent's session bus, run the authagent command on a terminal, or remove confirm from profile work"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, _ := newConfirmAgent(t, tc.confirmer, map[string]*providers.ProfileConfig{
				"work": {Confirm: providers.ConfirmAlways, ConfirmTimeout: tc.timeout, Hosts: []string{"api.example.com"}},
			})
			target, _ := url.Parse("https://api.example.com/v1")
			c, err := a.Credential(as(python(1234)), "work", -1, target)
			if tc.want == "" {
				if err != nil || c.Token != "tok" {
					t.Fatalf("Credential = %v, %v; want the token", c, err)
				}
			} else {
				if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Credential error = %v; want ErrDenied with %q", err, tc.want)
				}
				if c != nil {
					t.Fatalf("Credential = %+v along with an error", c)
				}
			}
			if f, ok := tc.confirmer.(*fakeConfirmer); ok {
				want := ConfirmRequest{Profile: "work", Operation: OpCredential, Host: "api.example.com", Caller: python(1234)}
				if len(f.asked) != 1 || f.asked[0].Profile != want.Profile || f.asked[0].Operation != want.Operation ||
					f.asked[0].Host != want.Host || *f.asked[0].Caller != *want.Caller {
					t.Fatalf("asked %+v, want once %+v", f.asked, want)
				}
			}
		})
	}
}

// TestConfirmOperations: a signature and an ID token are asked about too, each under its
// own name; a profile without confirm, and the agent's own subject_profile exchange, are
// not.
func TestConfirmOperations(t *testing.T) {
	f := &fakeConfirmer{answer: func(context.Context, ConfirmRequest) (bool, error) { return false, nil }}
	a, _, envs := newConfirmAgent(t, f, map[string]*providers.ProfileConfig{
		"dci":   {Provider: "signer", Confirm: providers.ConfirmAlways, Hosts: []string{"api.example.com"}},
		"oidc":  {Provider: "id", Confirm: providers.ConfirmOncePerExe},
		"work":  {Confirm: providers.ConfirmAlways},
		"plain": {},
	})
	ctx := as(python(7))
	_, err := a.Sign(ctx, "dci", providers.SignRequest{Method: "GET", URL: "https://api.example.com/x"})
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "the user denied /usr/bin/python3 (pid 7) a signature of profile dci") {
		t.Errorf("Sign error = %v; want it denied", err)
	}
	_, err = a.IDToken(ctx, "oidc", -1, nil)
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "the ID token of profile oidc") {
		t.Errorf("IDToken error = %v; want it denied", err)
	}
	if got := f.count(); got != 2 {
		t.Fatalf("asked %d times, want 2: %+v", got, f.asked)
	}
	if f.asked[0].Operation != OpSign || f.asked[0].Host != "api.example.com" || f.asked[1].Operation != OpIDToken {
		t.Errorf("asked %+v; want sign for api.example.com, then id_token", f.asked)
	}
	if c, err := a.Credential(ctx, "plain", -1, nil); err != nil || c.Token != "tok" {
		t.Errorf("a profile without confirm: %v, %v", c, err)
	}
	// plain's provider trades work's token (subject_profile = "work"): the agent asks
	// nobody for its own exchange.
	tok, _, err := envs["plain"].ProfileToken(ctx, "work", false, nil)
	if err != nil || tok != "tok" {
		t.Errorf("subject_profile token = %q, %v; want work's token unasked", tok, err)
	}
	if got := f.count(); got != 2 {
		t.Errorf("asked %d times, want still 2: %+v", got, f.asked[2:])
	}
}

// TestConfirmOncePerExe: an approval is remembered per executable (path, device and inode)
// for confirm_window: another process of the same executable is not asked, but the same
// path with another inode (a replaced binary), another path, one with no known executable
// and any after the window are. A denial is not remembered. confirm = true asks every time.
func TestConfirmOncePerExe(t *testing.T) {
	answer := true
	f := &fakeConfirmer{answer: func(context.Context, ConfirmRequest) (bool, error) { return answer, nil }}
	a, clock, _ := newConfirmAgent(t, f, map[string]*providers.ProfileConfig{
		"work":   {Confirm: providers.ConfirmOncePerExe, ConfirmWindow: providers.Duration(time.Hour)},
		"always": {Confirm: providers.ConfirmAlways},
		"dflt":   {Confirm: providers.ConfirmOncePerExe},
	})
	replaced := python(1)
	replaced.Ino = 2002
	curl := &Caller{PID: 5, Exe: "/usr/bin/curl", Dev: 8, Ino: 1001}
	byMake := python(1)
	byMake.ParentPID, byMake.ParentExe = 1, "/usr/bin/make"
	rewritten := python(1) // `cat other > python3`: same inode, another ctime
	rewritten.Ctime = 77
	resized := python(1)
	resized.Size = 4096
	elsewhere := python(1) // the path holds another file here (another mount namespace)
	elsewhere.ExeMismatch = true
	steps := []struct {
		what    string
		profile string
		caller  *Caller
		advance time.Duration
		asked   bool
	}{
		{"first use", "work", python(1), 0, true},
		{"same process again", "work", python(1), 0, false},
		{"another process of the same executable", "work", python(2), 0, false},
		{"same path, another inode", "work", replaced, 0, true},
		{"the old inode still approved", "work", python(3), 0, false},
		{"another executable with the same inode", "work", curl, 0, true},
		{"the approved executable run by another program", "work", byMake, 0, true},
		{"same inode, another ctime", "work", rewritten, 0, true},
		{"same inode, another size", "work", resized, 0, true},
		{"the rewritten one again", "work", rewritten, 0, false},
		{"not the file at its path here", "work", elsewhere, 0, true},
		{"not the file at its path here, again", "work", elsewhere, 0, true},
		{"unknown executable", "work", &Caller{PID: 9}, 0, true},
		{"unknown executable again", "work", &Caller{PID: 9}, 0, true},
		{"no caller at all", "work", nil, 0, true},
		{"inside the window", "work", python(4), 59 * time.Minute, false},
		{"after the window", "work", python(4), 2 * time.Minute, true},
		{"confirm = true", "always", python(1), 0, true},
		{"confirm = true, again", "always", python(1), 0, true},
		{"default window: first", "dflt", python(1), 0, true},
		{"default window: inside 10m", "dflt", python(1), 9 * time.Minute, false},
		{"default window: after 10m", "dflt", python(1), 2 * time.Minute, true},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		before := f.count()
		ctx := context.Background()
		if s.caller != nil {
			ctx = as(s.caller)
		}
		if _, err := a.Credential(ctx, s.profile, -1, nil); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		if got := f.count() > before; got != s.asked {
			t.Errorf("%s: asked = %v, want %v", s.what, got, s.asked)
		}
	}
	if len(f.asked) < 7 {
		t.Fatalf("asked %d questions, want more", len(f.asked))
	}
	for i, want := range map[int]string{1: "/usr/bin/python3 (pid 1)", 3: "/usr/bin/python3 (pid 1, run by /usr/bin/make, pid 1)",
		6: "/usr/bin/python3 (not the file at that path here) (pid 1)", 8: "an unknown program (pid 9)", 10: "an unknown program"} {
		if got := f.asked[i].Who(); got != want {
			t.Errorf("question %d names %q, want %q", i, got, want)
		}
	}

	// A denial is not remembered: the next request asks again.
	answer = false
	for i := range 2 {
		before := f.count()
		if _, err := a.Credential(as(&Caller{PID: 6, Exe: "/usr/bin/wget", Ino: 3}), "work", -1, nil); !errors.Is(err, ErrDenied) {
			t.Fatalf("request %d: %v, want denied", i, err)
		}
		if f.count() != before+1 {
			t.Fatalf("request %d after a denial was not asked", i)
		}
	}
}

// TestConfirmSingleFlight: concurrent requests of one executable for one profile share one
// question and all get its answer.
func TestConfirmSingleFlight(t *testing.T) {
	for _, tc := range []struct {
		mode    providers.ConfirmMode
		callers func(i int) *Caller
	}{
		{providers.ConfirmOncePerExe, python},                              // processes of one executable
		{providers.ConfirmAlways, func(int) *Caller { return python(42) }}, // one process
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			release := make(chan struct{})
			f := &fakeConfirmer{calls: make(chan ConfirmRequest, 10), answer: func(ctx context.Context, _ ConfirmRequest) (bool, error) {
				<-release
				return true, nil
			}}
			a, _, _ := newConfirmAgent(t, f, map[string]*providers.ProfileConfig{"work": {Confirm: tc.mode}})
			const n = 8
			errs := make(chan error, n)
			for i := range n {
				go func() {
					_, err := a.Credential(as(tc.callers(i+1)), "work", -1, nil)
					errs <- err
				}()
			}
			f.next(t)
			waitWaiters(t, a, "work", n)
			close(release) // the question is answered: allowed
			for range n {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if got := f.count(); got != 1 {
				t.Fatalf("asked %d times for %d concurrent requests, want 1", got, n)
			}
		})
	}
}

// waitWaiters waits until n requests wait for the one question profile name has open.
func waitWaiters(t *testing.T, a *Agent, name string, n int) {
	t.Helper()
	a.mu.Lock()
	p := a.profiles.get(name)
	a.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		p.confirm.mu.Lock()
		waiting := 0
		for _, q := range p.confirm.asking {
			waiting += q.waiters
		}
		questions := len(p.confirm.asking)
		p.confirm.mu.Unlock()
		if questions > 1 {
			t.Fatalf("%d questions open, want 1", questions)
		}
		if waiting == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d requests did not all wait for one question", n)
}

// TestConfirmBlocksNoOne: while a question waits for the user, other profiles are served,
// another profile's question and another caller's question of the same profile are asked
// at the same time, and the profile can be listed and reloaded.
func TestConfirmBlocksNoOne(t *testing.T) {
	release := make(chan struct{})
	f := &fakeConfirmer{calls: make(chan ConfirmRequest, 10), answer: func(ctx context.Context, req ConfirmRequest) (bool, error) {
		if req.Caller != nil && req.Caller.PID == 1 {
			select {
			case <-release:
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
		return true, nil
	}}
	a, _, _ := newConfirmAgent(t, f, map[string]*providers.ProfileConfig{
		"work":  {Confirm: providers.ConfirmAlways},
		"other": {Confirm: providers.ConfirmAlways},
		"plain": {},
	})
	first := make(chan error, 1)
	go func() {
		_, err := a.Credential(as(python(1)), "work", -1, nil)
		first <- err
	}()
	if req := f.next(t); req.Caller.PID != 1 {
		t.Fatalf("first question from pid %d", req.Caller.PID)
	}
	curl := &Caller{PID: 2, Exe: "/usr/bin/curl", Ino: 5}
	for _, r := range []struct {
		what, profile string
		caller        *Caller
	}{
		{"a profile without confirm", "plain", python(1)},
		{"another profile with confirm, same caller's executable", "other", python(3)},
		{"the same profile, another caller", "work", curl},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := a.Credential(as(r.caller), r.profile, -1, nil)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", r.what, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s waits behind the open question", r.what)
		}
		if r.profile != "plain" {
			f.next(t)
		}
	}
	a.Profiles()
	if _, err := a.Profile("work"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-first:
		t.Fatalf("the first request ended (%v) before its question was answered", err)
	default:
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// TestConfirmCallerLeaves: a caller that leaves while its question is open gets its
// context's error, and the question stays open for the others that share it.
func TestConfirmCallerLeaves(t *testing.T) {
	release := make(chan struct{})
	f := &fakeConfirmer{calls: make(chan ConfirmRequest, 10), answer: func(ctx context.Context, _ ConfirmRequest) (bool, error) {
		<-release
		return true, nil
	}}
	a, _, _ := newConfirmAgent(t, f, map[string]*providers.ProfileConfig{"work": {Confirm: providers.ConfirmOncePerExe}})
	ctx, cancel := context.WithCancel(as(python(1)))
	left := make(chan error, 1)
	go func() {
		_, err := a.Credential(ctx, "work", -1, nil)
		left <- err
	}()
	f.next(t)
	second := make(chan error, 1)
	go func() {
		_, err := a.Credential(as(python(2)), "work", -1, nil)
		second <- err
	}()
	waitWaiters(t, a, "work", 2)
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that left got %v", err)
	}
	close(release)
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if f.count() != 1 {
		t.Fatalf("asked %d times, want 1", f.count())
	}
}

// TestConfirmConfig: confirm keys in a config file: true and "once-per-exe" load; a value
// of another kind, an unknown word, and confirm_window or confirm_timeout without the
// confirm they tune, are errors that name the file, line and key.
func TestConfirmConfig(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       string // "" loads; else a part of the error
		mode       providers.ConfirmMode
	}{
		{"true", "confirm = true\n", "", providers.ConfirmAlways},
		{"false", "confirm = false\n", "", ""},
		{"once-per-exe", "confirm = \"once-per-exe\"\nconfirm_window = \"1h\"\nconfirm_timeout = \"1m\"\n", "", providers.ConfirmOncePerExe},
		{"a number", "confirm = 1\n", `config.toml:3: profile.work.confirm: "1": want true`, ""},
		{"a word", "confirm = \"sometimes\"\n", `profile.work.confirm: "sometimes": want true`, ""},
		{"window alone", "confirm = true\nconfirm_window = \"5m\"\n", `profile.work.confirm_window: only used with confirm = "once-per-exe"`, ""},
		{"timeout alone", "confirm_timeout = \"5m\"\n", `profile.work.confirm_timeout: only used with confirm`, ""},
		{"window as a number", "confirm = \"once-per-exe\"\nconfirm_window = 600\n", "profile.work.confirm_window", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, []byte("[profile.work]\nprovider = \"fake\"\n"+tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(path)
			if err == nil {
				_, err = New(Options{Config: cfg, Store: NewMemoryStore(), Providers: map[string]providers.Factory{
					"fake": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) {
						return confirmProvider{}, nil
					},
				}})
			}
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := cfg.Profiles["work"].Confirm; got != tc.mode {
					t.Fatalf("confirm = %q, want %q", got, tc.mode)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v; want one with %q", err, tc.want)
			}
		})
	}
}

// TestConfirmQuestion: the question names the program, its parent, a replaced executable,
// the profile, what is asked for and where it goes; a path cannot forge the question.
func TestConfirmQuestion(t *testing.T) {
	for _, tc := range []struct {
		req  ConfirmRequest
		want string
	}{
		{ConfirmRequest{Profile: "work", Operation: OpCredential, Host: "api.example.com", Caller: python(12)},
			"/usr/bin/python3 (pid 12) asks for the token of profile work, for api.example.com."},
		{ConfirmRequest{Profile: "dci", Operation: OpSign, Caller: &Caller{PID: 3, Exe: "/usr/bin/curl", ExeDeleted: true, ParentPID: 2, ParentExe: "/bin/bash"}},
			"/usr/bin/curl (deleted) (pid 3, run by /bin/bash, pid 2) asks for a signature of profile dci."},
		{ConfirmRequest{Profile: "oidc", Operation: OpIDToken, Caller: &Caller{PID: 4}},
			"an unknown program (pid 4) asks for the ID token of profile oidc."},
		{ConfirmRequest{Profile: "work", Operation: OpCredential},
			"an unknown program asks for the token of profile work."},
		{ConfirmRequest{Profile: "work", Operation: OpCredential, Caller: &Caller{PID: 5, Exe: "/tmp/x (pid 1) asks for nothing.\nAllow"}},
			`"/tmp/x (pid 1) asks for nothing.\nAllow" (pid 5) asks for the token of profile work.`},
		{ConfirmRequest{Profile: "work", Operation: OpCredential, Caller: &Caller{PID: 8, Exe: "/tmp/caf\xe9"}},
			`"/tmp/caf\xe9" (pid 8) asks for the token of profile work.`},
		{ConfirmRequest{Profile: "work", Operation: OpCredential, Caller: &Caller{PID: 6, Exe: "/usr/bin/curl", ExeMismatch: true}},
			"/usr/bin/curl (not the file at that path here) (pid 6) asks for the token of profile work."},
		{ConfirmRequest{Profile: "work", Operation: OpChange, Caller: python(7)},
			"/usr/bin/python3 (pid 7) asks for a change of profile work."},
		{ConfirmRequest{Profile: "work", Operation: OpRemove, Caller: python(7)},
			"/usr/bin/python3 (pid 7) asks for the removal of profile work."},
	} {
		if got := tc.req.Question(); got != tc.want {
			t.Errorf("Question() = %q\nwant         %q", got, tc.want)
		}
	}
	for _, tc := range []struct {
		caller *Caller
		want   string
	}{
		{python(1), "python3"},
		{&Caller{PID: 2, Exe: "/tmp/git to use profile work?\nAllow"}, `"git to use profile work?\nAllow"`},
		{&Caller{PID: 3, Exe: "/tmp/\u202egit"}, `"\u202egit"`},
		{&Caller{PID: 4}, "an unknown program"},
		{nil, "an unknown program"},
	} {
		if got := (ConfirmRequest{Caller: tc.caller}).Program(); got != tc.want {
			t.Errorf("Program() of %+v = %q, want %q", tc.caller, got, tc.want)
		}
	}
}

// TestConfirmOnTerminal: with no way to ask through the desktop, a caller that runs the
// agent's own executable and says it can ask on its terminal gets the question with a
// one-use id (ErrConfirmRequired); the answer sent back with that id is taken from that
// process only, once, for that operation, within confirm_timeout. Another program that
// says it can ask gets a plain denial: it could answer without asking anyone.
func TestConfirmOnTerminal(t *testing.T) {
	dev, ino, ok := selfExe()
	if !ok {
		t.Fatal("cannot stat this test's own executable")
	}
	self := func(pid int) *Caller {
		return &Caller{PID: pid, Exe: "/usr/bin/authagent", Dev: dev, Ino: ino, ParentPID: 1, ParentExe: "/bin/bash"}
	}
	a, clock, _ := newConfirmAgent(t, nil, map[string]*providers.ProfileConfig{
		"work": {Provider: "id", Confirm: providers.ConfirmOncePerExe, ConfirmTimeout: providers.Duration(time.Minute)},
		"sig":  {Provider: "signer", Confirm: providers.ConfirmAlways, Hosts: []string{"api.example.com"}},
	})
	canAsk := func(c *Caller) context.Context {
		return WithTerminal(as(c), TerminalAnswer{CanAsk: true})
	}
	answer := func(c *Caller, id string, allow bool) context.Context {
		return WithTerminal(as(c), TerminalAnswer{CanAsk: true, ID: id, Allow: allow})
	}
	question := func(ctx context.Context) *ConfirmRequiredError {
		t.Helper()
		_, err := a.Credential(ctx, "work", -1, nil)
		var cr *ConfirmRequiredError
		if !errors.As(err, &cr) || !errors.Is(err, ErrConfirmRequired) || cr.ID == "" {
			t.Fatalf("Credential = %v; want a question for the terminal", err)
		}
		return cr
	}
	denied := func(what string, ctx context.Context, want string) {
		t.Helper()
		_, err := a.Credential(ctx, "work", -1, nil)
		if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: Credential = %v; want denied with %q", what, err, want)
		}
	}

	// Not the agent's executable, or not able to ask: denied as without a terminal.
	denied("another program", canAsk(python(5)), "could not ask whether /usr/bin/python3 (pid 5)")
	denied("no terminal", as(self(5)), "could not ask")

	cr := question(canAsk(self(5)))
	if want := "/usr/bin/authagent (pid 5, run by /bin/bash, pid 1) asks for the token of profile work."; cr.Question != want {
		t.Errorf("question %q, want %q", cr.Question, want)
	}
	denied("the answer from another process", answer(self(6), cr.ID, true), "fits no open question")
	denied("the same id again", answer(self(5), cr.ID, true), "fits no open question")

	cr = question(canAsk(self(5)))
	denied("the user says no", answer(self(5), cr.ID, false), "the user denied /usr/bin/authagent (pid 5, run by /bin/bash, pid 1) the token of profile work (answered on the terminal)")

	cr = question(canAsk(self(5)))
	clock.Advance(time.Minute)
	denied("an answer after confirm_timeout", answer(self(5), cr.ID, true), "fits no open question")

	cr = question(canAsk(self(5)))
	if _, err := a.Sign(answer(self(5), cr.ID, true), "sig", providers.SignRequest{Method: "GET", URL: "https://api.example.com/"}); !errors.Is(err, ErrDenied) {
		t.Fatalf("the id of another profile's question: %v", err)
	}
	if _, err := a.IDToken(answer(self(5), cr.ID, true), "work", -1, nil); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "fits no open question") {
		t.Fatalf("the id of a token question used for an ID token: %v", err)
	}
	denied("an id used for another operation before", answer(self(5), cr.ID, true), "fits no open question")
	denied("a made-up id", answer(self(5), "00ff", true), "fits no open question")

	cr = question(canAsk(self(5)))
	if c, err := a.Credential(answer(self(5), cr.ID, true), "work", -1, nil); err != nil || c.Token != "tok" {
		t.Fatalf("allowed on the terminal: %v, %v", c, err)
	}
	// once-per-exe: the approval is remembered for the executable (run by the same parent).
	if c, err := a.Credential(as(self(7)), "work", -1, nil); err != nil || c.Token != "tok" {
		t.Fatalf("after an approval on the terminal: %v, %v", c, err)
	}
}

// TestConfirmNotShared: under confirm = true, concurrent requests of one process share a
// question only when they ask for the same thing for the same host: each signature is
// asked for on its own, an ID token does not ride on a question about the token, and a
// token for another host is asked about apart.
func TestConfirmNotShared(t *testing.T) {
	release := make(chan struct{})
	f := &fakeConfirmer{calls: make(chan ConfirmRequest, 20), answer: func(ctx context.Context, _ ConfirmRequest) (bool, error) {
		<-release
		return true, nil
	}}
	a, _, _ := newConfirmAgent(t, f, map[string]*providers.ProfileConfig{
		"dci":  {Provider: "signer", Confirm: providers.ConfirmAlways, Hosts: []string{"api.example.com"}},
		"oidc": {Provider: "id", Confirm: providers.ConfirmAlways, Hosts: []string{"a.example.com", "b.example.com"}},
	})
	errs := make(chan error, 10)
	run := func(f func() error) { go func() { errs <- f() }() }
	for _, m := range []string{"GET", "DELETE", "DELETE"} {
		run(func() error {
			_, err := a.Sign(as(python(42)), "dci", providers.SignRequest{Method: m, URL: "https://api.example.com/x"})
			return err
		})
	}
	for range 3 {
		if req := f.next(t); req.Operation != OpSign {
			t.Fatalf("asked %+v, want a signature", req)
		}
	}
	// Another process (one has at most maxQuestionsPerCaller open).
	a1, _ := url.Parse("https://a.example.com/")
	b1, _ := url.Parse("https://b.example.com/")
	run(func() error { _, err := a.Credential(as(python(43)), "oidc", -1, a1); return err })
	if req := f.next(t); req.Operation != OpCredential || req.Host != "a.example.com" {
		t.Fatalf("asked %+v, want the token for a.example.com", req)
	}
	run(func() error {
		_, err := a.IDToken(as(python(43)), "oidc", -1, a1)
		if err != nil && strings.Contains(err.Error(), "has no ID token") {
			return nil // allowed: the fake provider has no ID token to give
		}
		return err
	})
	if req := f.next(t); req.Operation != OpIDToken {
		t.Fatalf("asked %+v, want the ID token", req)
	}
	run(func() error { _, err := a.Credential(as(python(43)), "oidc", -1, b1); return err })
	if req := f.next(t); req.Host != "b.example.com" {
		t.Fatalf("asked %+v, want the token for b.example.com", req)
	}
	close(release)
	for range 6 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := f.count(); got != 6 {
		t.Fatalf("asked %d times for 6 different requests, want 6", got)
	}
}

// waitNoQuestions waits until a has no question open.
func waitNoQuestions(t *testing.T, a *Agent) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		a.questions.mu.Lock()
		n := a.questions.n
		a.questions.mu.Unlock()
		if n == 0 {
			return
		}
	}
	t.Fatal("questions still open")
}

// TestConfirmEveryoneLeft: when every request waiting for a question left, the question is
// withdrawn (the Confirmer's context ends, so the notification closes), and an Allow that
// comes anyway approves nothing: the next request of the executable is asked.
func TestConfirmEveryoneLeft(t *testing.T) {
	withdrawn := make(chan struct{})
	release := make(chan struct{})
	var first sync.Once
	f := &fakeConfirmer{calls: make(chan ConfirmRequest, 10), answer: func(ctx context.Context, _ ConfirmRequest) (bool, error) {
		isFirst := false
		first.Do(func() { isFirst = true })
		if !isFirst {
			return true, nil
		}
		<-ctx.Done()
		close(withdrawn)
		<-release // the user clicks Allow just as the question closes
		return true, nil
	}}
	a, _, _ := newConfirmAgent(t, f, map[string]*providers.ProfileConfig{
		"work": {Confirm: providers.ConfirmOncePerExe, ConfirmTimeout: providers.Duration(time.Hour)},
	})
	ctx, cancel := context.WithCancel(as(python(1)))
	left := make(chan error, 1)
	go func() {
		_, err := a.Credential(ctx, "work", -1, nil)
		left <- err
	}()
	f.next(t)
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("the request that left got %v", err)
	}
	select {
	case <-withdrawn:
	case <-time.After(10 * time.Second):
		t.Fatal("the question stayed open after every request that asked it left")
	}
	close(release)
	waitNoQuestions(t, a)
	if _, err := a.Credential(as(python(2)), "work", -1, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.count(); got != 2 {
		t.Fatalf("asked %d times, want 2: the withdrawn question's Allow must not approve the executable", got)
	}
}

// TestConfirmProfileChangedMeanwhile: an Allow is about the profile as it was when asked:
// one removed meanwhile is not served (unknown profile), and one defined anew meanwhile
// is not served on the old answer.
func TestConfirmProfileChangedMeanwhile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(a *Agent) error
		want   error
	}{
		{"removed", func(a *Agent) error { return a.DeleteProfile(internalContext(context.Background()), "work") }, ErrUnknownProfile},
		{"defined anew", func(a *Agent) error {
			return a.PutProfile(internalContext(context.Background()), "work", &providers.ProfileConfig{Provider: "fake", Hosts: []string{"other.example.com"}}, nil)
		}, ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a *Agent
			f := &fakeConfirmer{answer: func(context.Context, ConfirmRequest) (bool, error) {
				if err := tc.change(a); err != nil {
					return false, err
				}
				return true, nil // the user allows the old definition
			}}
			a, _, _ = newConfirmAgent(t, f, map[string]*providers.ProfileConfig{"work": {Confirm: providers.ConfirmAlways}})
			c, err := a.Credential(as(python(1)), "work", -1, nil)
			if !errors.Is(err, tc.want) || c != nil {
				t.Fatalf("Credential = %v, %v; want %v", c, err, tc.want)
			}
		})
	}
}

// TestConfirmCap: one caller process has at most maxQuestionsPerCaller questions open at
// once: one more of its requests is denied at once with a message that says why, while
// another process is still asked, about the same profile or another. The agent as a whole
// has at most maxQuestions open, against a flood from many processes. Once the questions
// are answered, the process is asked again.
func TestConfirmCap(t *testing.T) {
	release := make(chan struct{})
	f := &fakeConfirmer{calls: make(chan ConfirmRequest, 2*maxQuestions), answer: func(ctx context.Context, _ ConfirmRequest) (bool, error) {
		<-release
		return true, nil
	}}
	a, _, _ := newConfirmAgent(t, f, map[string]*providers.ProfileConfig{
		"dci":   {Provider: "signer", Confirm: providers.ConfirmAlways, Hosts: []string{"api.example.com"}},
		"work":  {Confirm: providers.ConfirmAlways},
		"other": {Confirm: providers.ConfirmAlways},
	})
	var released sync.Once
	free := func() { released.Do(func() { close(release) }) }
	defer free()
	errs := make(chan error, 2*maxQuestions)
	opened := 0
	open := func(what string, req func() error) {
		t.Helper()
		go func() { errs <- req() }()
		if q := f.next(t); q.Caller == nil {
			t.Fatalf("%s: asked %+v without its caller", what, q)
		}
		opened++
	}
	deniedAtOnce := func(what string, req func() error, want string) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- req() }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), want) {
				t.Fatalf("%s: %v; want it denied with %q", what, err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s waits for an answer instead of being denied", what)
		}
	}
	sign := func(pid int) func() error {
		return func() error {
			_, err := a.Sign(as(python(pid)), "dci", providers.SignRequest{Method: "GET", URL: "https://api.example.com/"})
			return err
		}
	}
	token := func(pid int, profile string) func() error {
		return func() error { _, err := a.Credential(as(python(pid)), profile, -1, nil); return err }
	}

	for range maxQuestionsPerCaller {
		open("a signature of pid 1", sign(1)) // each signature is a question of its own
	}
	deniedAtOnce("one more of pid 1", sign(1), "4 questions of this program wait for the user's answer already, so /usr/bin/python3 (pid 1) is not asked")
	deniedAtOnce("pid 1, another profile", token(1, "work"), "4 questions of this program wait")
	open("another process, the same profile", sign(2))
	open("another process, another profile", token(3, "other"))
	for pid := 100; opened < maxQuestions; pid++ {
		open(fmt.Sprintf("pid %d", pid), token(pid, "work"))
	}
	deniedAtOnce("one more of a new process", token(999, "other"), "32 questions wait for the user's answer already, so /usr/bin/python3 (pid 999) is not asked")
	if got := f.count(); got != maxQuestions {
		t.Fatalf("asked %d, want %d", got, maxQuestions)
	}
	free()
	for range opened {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitNoQuestions(t, a)
	if err := sign(1)(); err != nil {
		t.Fatalf("pid 1 after its questions were answered: %v", err)
	}
}

// TestConfirmChanges: a client's change (PUT, set-secret) or removal of a profile that has
// confirm set is asked about first, every time, even for an executable approved to use
// the profile; denied, nothing changes. A profile without confirm, and a new one, are
// changed unasked.
func TestConfirmChanges(t *testing.T) {
	answer := false
	f := &fakeConfirmer{answer: func(context.Context, ConfirmRequest) (bool, error) { return answer, nil }}
	a, _, _ := newConfirmAgent(t, f, map[string]*providers.ProfileConfig{
		"work":  {Confirm: providers.ConfirmOncePerExe},
		"plain": {},
	})
	ctx := as(python(1))
	answer = true
	if _, err := a.Credential(ctx, "work", -1, nil); err != nil { // approves python3 for use
		t.Fatal(err)
	}
	answer = false
	noConfirm := &providers.ProfileConfig{Provider: "fake"}
	denied := func(what string, err error, wantOp string) {
		t.Helper()
		if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "the user denied /usr/bin/python3 (pid 1)") {
			t.Fatalf("%s: %v; want denied", what, err)
		}
		if last := f.asked[len(f.asked)-1]; last.Operation != wantOp || last.Profile != "work" {
			t.Fatalf("%s: asked %+v, want %s of work", what, last, wantOp)
		}
	}
	denied("PUT", a.PutProfile(ctx, "work", noConfirm, nil), OpChange)
	denied("set-secret", a.SetSecret(ctx, "work", "s3cret"), OpChange)
	denied("DELETE", a.DeleteProfile(ctx, "work"), OpRemove)
	if _, err := a.Profile("work"); err != nil {
		t.Fatalf("the profile after denied changes: %v", err)
	}
	if a.cfg.Profiles["work"].Confirm != providers.ConfirmOncePerExe {
		t.Fatalf("confirm after a denied PUT: %q", a.cfg.Profiles["work"].Confirm)
	}
	if _, err := a.store.Get(context.Background(), "work/"+providers.SecretKey); !errors.Is(err, providers.ErrSecretNotFound) {
		t.Fatalf("the secret after a denied set-secret: %v; want none stored", err)
	}
	before := f.count()
	if err := a.PutProfile(ctx, "plain", noConfirm, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.PutProfile(ctx, "new", noConfirm, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteProfile(ctx, "new"); err != nil {
		t.Fatal(err)
	}
	if f.count() != before {
		t.Fatalf("asked about profiles without confirm: %+v", f.asked[before:])
	}
	answer = true
	if err := a.DeleteProfile(ctx, "work"); err != nil {
		t.Fatalf("an allowed removal: %v", err)
	}
	if last := f.asked[len(f.asked)-1]; last.Operation != OpRemove {
		t.Fatalf("asked %+v, want the removal", last)
	}
	if _, err := a.Profile("work"); !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("after an allowed removal: %v", err)
	}
}

// tradeSetup is an agent with a Confirmer, a real audit log, profiles "work" and "oidc"
// (confirm = true) and "plain" (none), each a pushedFake holding a token, "mid", which
// trades work's token (no confirm), and a token exchange endpoint that records the subject
// tokens it gets.
type tradeSetup struct {
	*exchangeEndpoint
	a   *Agent
	log *audit.Log
}

func newTradeSetup(t *testing.T, c Confirmer) *tradeSetup {
	t.Helper()
	s := &tradeSetup{exchangeEndpoint: newExchangeEndpoint(t)}
	exp := time.Now().Add(time.Hour)
	fakes := map[string]*pushedFake{}
	for _, name := range []string{"work", "oidc", "plain"} {
		fakes[name] = &pushedFake{name: name, tok: name + "-1", exp: exp}
	}
	local := []string{"127.0.0.1"}
	mid := s.exchange("work")
	al, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	s.log = al
	s.a, err = New(Options{
		Config: &Config{Path: filepath.Join(t.TempDir(), "config.toml"), Profiles: map[string]*providers.ProfileConfig{
			"work":  {Provider: "pushed", Confirm: providers.ConfirmAlways, Hosts: local},
			"oidc":  {Provider: "pushed", Confirm: providers.ConfirmAlways, Hosts: local},
			"plain": {Provider: "pushed", Hosts: local},
			"mid":   mid,
		}},
		Store: NewMemoryStore(),
		Providers: map[string]providers.Factory{
			"pushed": func(_ *providers.ProfileConfig, env providers.Env) (providers.Provider, error) {
				return fakes[env.Name], nil
			},
			apikey.Name: apikey.New,
		},
		Jitter:    func() float64 { return 0.5 },
		Confirmer: c,
		Audit:     al,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.a.Close)
	return s
}

// exchange is a definition that trades subject's token at the setup's endpoint.
func (s *tradeSetup) exchange(subject string) *providers.ProfileConfig {
	return &providers.ProfileConfig{Provider: apikey.Name, Mode: "token_exchange", SubjectProfile: subject, TokenURL: s.tokenURL, Hosts: []string{"example.org"}}
}

// TestConfirmTrades: a client's definition of a profile whose subject_profile has confirm
// set, directly or through a profile that has not, is asked about first, about that
// profile, whether the defined profile is new or replaced, every time, also for an ID
// token subject; denied, nothing changes and no token is traded. Allowed, the profile is
// defined and trades the token. A subject without confirm is not asked about.
func TestConfirmTrades(t *testing.T) {
	answer := false
	f := &fakeConfirmer{answer: func(context.Context, ConfirmRequest) (bool, error) { return answer, nil }}
	s := newTradeSetup(t, f)
	a := s.a
	ctx := as(python(1))
	cfgFile := func() string { b, _ := os.ReadFile(a.cfg.Path); return string(b) }
	denied := func(what string, pc *providers.ProfileConfig, wantQuestion string) {
		t.Helper()
		before := f.count()
		err := a.PutProfile(ctx, "steal", pc, nil)
		if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "the user denied /usr/bin/python3 (pid 1) a definition of profile steal, which trades") {
			t.Fatalf("%s: PUT = %v; want denied", what, err)
		}
		if f.count() != before+1 {
			t.Fatalf("%s: asked %d questions, want 1", what, f.count()-before)
		}
		if q := f.asked[len(f.asked)-1]; q.Question() != wantQuestion || q.Operation != OpChange || q.Trader != "steal" {
			t.Fatalf("%s: asked %+v\n%q\nwant %q", what, q, q.Question(), wantQuestion)
		}
	}
	const aboutWork = "/usr/bin/python3 (pid 1) asks to define profile steal, which trades the token of profile work."
	denied("a new profile trading work", s.exchange("work"), aboutWork)
	denied("a chain: steal → mid → work", s.exchange("mid"), aboutWork)
	idt := s.exchange("oidc")
	idt.SubjectTokenType = "id_token"
	denied("an ID token subject", idt, "/usr/bin/python3 (pid 1) asks to define profile steal, which trades the ID token of profile oidc.")
	if _, err := a.Profile("steal"); !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("steal after denied definitions: %v; want none", err)
	}
	if strings.Contains(cfgFile(), "steal") || a.cfg.Profiles["steal"] != nil {
		t.Fatalf("a denied definition reached the config:\n%s", cfgFile())
	}
	for _, sub := range s.traded() {
		if sub != "work-1" { // mid's own start trades work's token
			t.Fatalf("traded %q", sub)
		}
	}

	answer = true
	if err := a.PutProfile(ctx, "steal", s.exchange("work"), nil); err != nil {
		t.Fatalf("an allowed definition: %v", err)
	}
	if c, err := a.Credential(ctx, "steal", -1, nil); err != nil || c.Token != "ex-work-1" {
		t.Fatalf("steal after it was allowed: %+v, %v; want work's token traded", c, err)
	}
	answer = false
	before := *a.cfg.Profiles["steal"]
	replaced := s.exchange("work")
	replaced.Hosts = []string{"example.net"}
	denied("a replacement, after one was allowed", replaced, aboutWork)
	if got := a.cfg.Profiles["steal"]; got.Hosts[0] != before.Hosts[0] || !strings.Contains(cfgFile(), "example.org") || strings.Contains(cfgFile(), "example.net") {
		t.Fatalf("a denied replacement changed steal: %+v\n%s", got, cfgFile())
	}

	n := f.count()
	if err := a.PutProfile(ctx, "free", s.exchange("plain"), nil); err != nil {
		t.Fatal(err)
	}
	if err := a.PutProfile(ctx, "c1", s.exchange("c2"), nil); err != nil { // c2 is not defined yet
		t.Fatal(err)
	}
	if err := a.PutProfile(ctx, "c2", s.exchange("c1"), nil); err != nil { // a cycle: c2 → c1 → c2
		t.Fatal(err)
	}
	if f.count() != n {
		t.Fatalf("asked about trades of profiles without confirm: %+v", f.asked[n:])
	}
}

// TestConfirmTradeAuditCaller: the token of a subject_profile traded for a request is
// recorded in the audit log for that request's caller; one traded by a background fetch
// (the exchanging profile's first fetch at start) names no caller.
func TestConfirmTradeAuditCaller(t *testing.T) {
	s := newTradeSetup(t, &fakeConfirmer{answer: allow})
	waitState(t, s.a, "mid", StateValid) // its first fetch, in the background, traded work's token
	caller := python(77)
	caller.ParentPID, caller.ParentExe = 76, "/usr/bin/bash"
	ctx := as(caller)
	if err := s.a.Reject(ctx, "mid"); err != nil { // the next request fetches
		t.Fatal(err)
	}
	if c, err := s.a.Credential(ctx, "mid", -1, nil); err != nil || c.Token != "ex-work-1" {
		t.Fatalf("mid: %+v, %v", c, err)
	}
	entries := readAudit(t, s.log, audit.Filter{Profile: "work"}, 2)
	var background, forCaller int
	for _, e := range entries {
		switch {
		case e.Op != audit.OpCredential || e.Result != audit.ResultOK:
			t.Errorf("entry %+v; want only work's credential, ok", e)
		case e.PID == 0 && e.Exe == "":
			background++
		case e.PID == caller.PID && e.Exe == caller.Exe && e.ParentPID == caller.ParentPID && e.ParentExe == caller.ParentExe:
			forCaller++
		default:
			t.Errorf("entry %+v names another caller", e)
		}
	}
	if background != 1 || forCaller != 1 {
		t.Fatalf("work's entries: %d without a caller, %d for the request's caller; want 1 and 1: %+v", background, forCaller, entries)
	}
}

// TestConfirmLoginLogoutPush: a login, a logout and a pushed token of a profile with
// confirm set are asked about first, every time, each saying what it is; denied, nothing
// happens (no login starts, no logout reaches the provider, no token is taken). Reject,
// which only drops the cached token, is not asked about.
func TestConfirmLoginLogoutPush(t *testing.T) {
	answer := false
	f := &fakeConfirmer{answer: func(context.Context, ConfirmRequest) (bool, error) { return answer, nil }}
	clock := newFakeClock()
	lp := &loginProvider{approve: make(chan error, 1)}
	lp.clock = clock
	lp.fetch = func(*fakeClock, int) (*providers.Credential, error) {
		return nil, errors.Join(errors.New("not logged in"), providers.ErrNeedsLogin)
	}
	pp := &pushProvider{fakeProvider: fakeProvider{clock: clock, fetch: func(*fakeClock, int) (*providers.Credential, error) {
		return nil, errors.Join(errors.New("nothing pushed yet"), providers.ErrNeedsLogin)
	}}}
	a, err := New(Options{
		Config: &Config{Path: filepath.Join(t.TempDir(), "c.toml"), Profiles: map[string]*providers.ProfileConfig{
			"dc":   {Provider: "dc", Confirm: providers.ConfirmOncePerExe},
			"push": {Provider: "push", Confirm: providers.ConfirmAlways},
		}},
		Store: NewMemoryStore(), Clock: clock, Jitter: func() float64 { return 0.5 }, Confirmer: f,
		Providers: map[string]providers.Factory{
			"dc":   func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) { return lp, nil },
			"push": func(*providers.ProfileConfig, providers.Env) (providers.Provider, error) { return pp, nil },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	waitState(t, a, "dc", StateNeedsLogin)
	ctx := as(python(1))
	asked := func(what, profile, question string) {
		t.Helper()
		q := f.asked[len(f.asked)-1]
		if q.Profile != profile || q.Operation != OpChange || q.Question() != question {
			t.Fatalf("%s: asked %+v (%q), want %q", what, q, q.Question(), question)
		}
	}
	deniedErr := func(what string, err error, want string) {
		t.Helper()
		if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v; want denied with %q", what, err, want)
		}
	}

	_, err = a.Login(ctx, "dc")
	deniedErr("login", err, "the user denied /usr/bin/python3 (pid 1) a new login of profile dc")
	asked("login", "dc", "/usr/bin/python3 (pid 1) asks to start a login of profile dc.")
	if info, _ := a.Profile("dc"); info.Login != nil {
		t.Fatalf("a denied login started: %+v", info.Login)
	}
	deniedErr("push", a.PushToken(ctx, "push", "pushed-1", clock.Now().Add(time.Hour)), "a token pushed into profile push")
	asked("push", "push", "/usr/bin/python3 (pid 1) asks to push a token into profile push.")
	if pp.pushes != 0 {
		t.Fatalf("a denied push reached the provider %d times", pp.pushes)
	}
	deniedErr("logout", a.Logout(ctx, "dc"), "a logout of profile dc")
	asked("logout", "dc", "/usr/bin/python3 (pid 1) asks to log out of profile dc.")
	if lp.logouts != 0 {
		t.Fatalf("a denied logout reached the provider %d times", lp.logouts)
	}

	answer = true
	n := f.count()
	if _, err := a.Login(ctx, "dc"); err != nil {
		t.Fatalf("an allowed login: %v", err)
	}
	lp.approve <- nil
	waitState(t, a, "dc", StateValid)
	if err := a.PushToken(ctx, "push", "pushed-1", clock.Now().Add(time.Hour)); err != nil {
		t.Fatalf("an allowed push: %v", err)
	}
	if err := a.PushToken(ctx, "push", "pushed-2", clock.Now().Add(time.Hour)); err != nil {
		t.Fatalf("an allowed push: %v", err)
	}
	if err := a.Reject(ctx, "push"); err != nil {
		t.Fatal(err)
	}
	if got := f.count() - n; got != 3 {
		t.Fatalf("asked %d times for a login, two pushes and a reject; want 3 (every push, no reject)", got)
	}
	// An approval to use the profile (once-per-exe) approves no logout.
	if _, err := a.Credential(ctx, "dc", -1, nil); err != nil {
		t.Fatal(err)
	}
	answer = false
	deniedErr("logout after an approved use", a.Logout(ctx, "dc"), "a logout of profile dc")
	if st := waitState(t, a, "dc", StateValid); st.Name != "dc" {
		t.Fatal(st)
	}
	answer = true
	if err := a.Logout(ctx, "dc"); err != nil {
		t.Fatalf("an allowed logout: %v", err)
	}
	if lp.logouts != 1 {
		t.Fatalf("logouts = %d, want 1", lp.logouts)
	}
}

// TestConfirmTerminalHost: an answer given on the terminal is for the question asked: the
// same process cannot use it for the token for another host.
func TestConfirmTerminalHost(t *testing.T) {
	dev, ino, ok := selfExe()
	if !ok {
		t.Fatal("cannot stat this test's own executable")
	}
	self := &Caller{PID: 5, Exe: "/usr/bin/authagent", Dev: dev, Ino: ino}
	a, _, _ := newConfirmAgent(t, nil, map[string]*providers.ProfileConfig{
		"work": {Confirm: providers.ConfirmAlways, Hosts: []string{"a.example.com", "b.example.com"}},
	})
	ua, _ := url.Parse("https://a.example.com/")
	ub, _ := url.Parse("https://b.example.com/")
	_, err := a.Credential(WithTerminal(as(self), TerminalAnswer{CanAsk: true}), "work", -1, ua)
	var cr *ConfirmRequiredError
	if !errors.As(err, &cr) || cr.ID == "" || !strings.HasSuffix(cr.Question, "for a.example.com.") {
		t.Fatalf("Credential = %v; want a question for the terminal about a.example.com", err)
	}
	_, err = a.Credential(WithTerminal(as(self), TerminalAnswer{CanAsk: true, ID: cr.ID, Allow: true}), "work", -1, ub)
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "fits no open question") {
		t.Fatalf("an answer about a.example.com used for b.example.com: %v; want denied", err)
	}
	_, err = a.Credential(WithTerminal(as(self), TerminalAnswer{CanAsk: true}), "work", -1, ua)
	if !errors.As(err, &cr) {
		t.Fatalf("Credential = %v; want a question", err)
	}
	if c, err := a.Credential(WithTerminal(as(self), TerminalAnswer{CanAsk: true, ID: cr.ID, Allow: true}), "work", -1, ua); err != nil || c.Token != "tok" {
		t.Fatalf("the answer for its own host: %+v, %v", c, err)
	}
}

// TestConfirmLeftoverSecrets: secrets of a profile with confirm that a hand edit and a
// reload removed stay in the store, but a client's definition of that name (no longer
// served) starts without them: no profile is handed the old secret unasked. A definition
// that replaces a served profile keeps its secret.
func TestConfirmLeftoverSecrets(t *testing.T) {
	f := &fakeConfirmer{answer: allow}
	a, _, _ := newConfirmAgent(t, f, map[string]*providers.ProfileConfig{})
	bg := context.Background()
	secret := "old-s3cret"
	if err := a.PutProfile(internalContext(bg), "work", &providers.ProfileConfig{Provider: "fake", Confirm: providers.ConfirmAlways}, &secret); err != nil {
		t.Fatal(err)
	}
	if err := a.store.Set(bg, "work/"+providers.RefreshTokenKey, "old-refresh"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.cfg.Path, []byte("secret_store = \"keyring\"\n"), 0o600); err != nil { // the hand edit
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, err := a.store.Get(bg, "work/"+providers.SecretKey); err != nil || got != secret {
		t.Fatalf("after the reload the store holds %q, %v; want the old secret still there", got, err)
	}
	ctx := as(python(1))
	if err := a.PutProfile(ctx, "work", &providers.ProfileConfig{Provider: "fake"}, nil); err != nil {
		t.Fatal(err)
	}
	if f.count() != 0 {
		t.Fatalf("asked %+v about a new profile without confirm", f.asked)
	}
	for _, k := range []string{providers.SecretKey, providers.RefreshTokenKey} {
		if got, err := a.store.Get(bg, "work/"+k); !errors.Is(err, providers.ErrSecretNotFound) {
			t.Fatalf("the new definition of work finds the old %s: %q, %v", k, got, err)
		}
	}
	// Replacing a served profile keeps its secret.
	mine := "new-s3cret"
	if err := a.SetSecret(ctx, "work", mine); err != nil {
		t.Fatal(err)
	}
	if err := a.PutProfile(ctx, "work", &providers.ProfileConfig{Provider: "fake", Hosts: []string{"api.example.com"}}, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := a.store.Get(bg, "work/"+providers.SecretKey); err != nil || got != mine {
		t.Fatalf("a replaced profile's secret: %q, %v; want it kept", got, err)
	}
}
