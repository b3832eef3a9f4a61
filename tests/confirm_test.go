package tests

import (
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/authagent/authagent/confirm/notifytest"
)

// confirmServer serves org.freedesktop.Notifications with actions on sess's bus, the
// bus the agent asks on.
func confirmServer(t *testing.T, sess *session) *notifytest.Server {
	t.Helper()
	conn, err := dbus.Connect(sess.vars["DBUS_SESSION_BUS_ADDRESS"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	srv, err := notifytest.Start(conn, "actions", "body")
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestConfirmToken: `authagent token` of a profile with confirm = true asks through a
// desktop notification on the agent's session bus that names the CLI's executable and pid
// and the profile; Allow prints the token, Deny and a dismissed question fail with exit 1
// and say who was denied what, with no token on stdout. Every use asks again.
func TestConfirmToken(t *testing.T) {
	t.Parallel()
	sess := startSession(t)
	srv := confirmServer(t, sess)
	e := newEnv(t, sess)
	startAgent(t, e)
	secret := canary(t)
	addAPIKey(t, e, "hub", secret, append(hubFlags(), "--confirm", "always")...)

	srv.SetAnswer(notifytest.Allow, false)
	if got := runOK(t, e, "", "token", "hub").stdout; got != secret+"\n" {
		t.Fatalf("authagent token hub, allowed = %q, want the token", got)
	}
	notes := srv.Notes()
	if len(notes) != 1 {
		t.Fatalf("%d notifications for one use, want 1", len(notes))
	}
	if want := "Allow authagent to use profile hub?"; notes[0].Summary != want {
		t.Errorf("summary %q, want %q", notes[0].Summary, want)
	}
	if want := authagentBin + " (pid "; !strings.Contains(notes[0].Body, want) || !strings.Contains(notes[0].Body, "asks for the token of profile hub") {
		t.Errorf("body %q: want the CLI's executable (%s), pid and the profile", notes[0].Body, authagentBin)
	}
	if strings.Contains(notes[0].Body, secret) || strings.Contains(notes[0].Summary, secret) {
		t.Fatal("the notification holds the secret")
	}

	for _, answer := range []notifytest.Answer{notifytest.Deny, notifytest.Dismiss} {
		srv.SetAnswer(answer, false)
		r := run(t, e, "", "token", "hub")
		if r.code != 1 || r.stdout != "" {
			t.Fatalf("authagent token hub, %s: %s; want exit 1 and nothing on stdout", answer, r)
		}
		for _, want := range []string{"the user denied " + authagentBin + " (pid ", "the token of profile hub"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("authagent token hub, %s: stderr %q lacks %q", answer, r.stderr, want)
			}
		}
		if strings.Contains(r.stderr, secret) {
			t.Fatal("the error holds the secret")
		}
	}
	if got := len(srv.Notes()); got != 3 {
		t.Fatalf("%d notifications for three uses of a confirm = true profile, want 3", got)
	}
}

// TestConfirmOncePerExe: with confirm = "once-per-exe", the first `authagent token` asks
// and the next runs of the same executable (other processes) do not, while the approval
// lasts; a program that is not that executable is asked.
func TestConfirmOncePerExe(t *testing.T) {
	t.Parallel()
	needTools(t, "curl")
	sess := startSession(t)
	srv := confirmServer(t, sess)
	e := newEnv(t, sess)
	startAgent(t, e)
	secret := canary(t)
	addAPIKey(t, e, "hub", secret, append(hubFlags(), "--confirm", "once-per-exe", "--confirm-window", "1h")...)

	srv.SetAnswer(notifytest.Allow, false)
	for i := range 3 {
		if got := runOK(t, e, "", "token", "hub").stdout; got != secret+"\n" {
			t.Fatalf("run %d: authagent token hub = %q, want the token", i, got)
		}
	}
	if got := len(srv.Notes()); got != 1 {
		t.Fatalf("%d notifications for three runs of one executable, want 1", got)
	}

	srv.SetAnswer(notifytest.Deny, false)
	status, body := curlAgent(t, e, "/v1/profiles/hub/credential")
	apiErr := wantAPIError(t, "curl, denied", status, body, 403, "denied")
	if !strings.Contains(apiErr.Error.Message, "the user denied ") || !strings.Contains(apiErr.Error.Message, "curl (pid ") {
		t.Errorf("message %q: want it to name curl", apiErr.Error.Message)
	}
	if got := len(srv.Notes()); got != 2 {
		t.Fatalf("%d notifications after curl asked, want 2", got)
	}
}

// TestConfirmOnTerminal: with no notification server on the agent's session bus,
// `authagent token` of a profile with confirm = true that runs on a terminal asks there:
// the one-shot front hands the command over to the full binary, which the agent lets ask
// (it runs the agent's own executable); "y" prints the token, anything else fails with
// exit 1 and "denied". Without a terminal it fails and says how to answer. (script(1)
// gives the command a terminal and types the answer.)
func TestConfirmOnTerminal(t *testing.T) {
	t.Parallel()
	needTools(t, "script")
	e := newEnv(t, startSession(t)) // a session bus with no notification server
	startAgent(t, e)
	secret := canary(t)
	addAPIKey(t, e, "hub", secret, append(hubFlags(), "--confirm", "always")...)

	onTerminal := func(typed string) result {
		t.Helper()
		return runIn(t, e.environ(), e.dir, typed, "script", "-qec", authagentBin+" token hub", "/dev/null")
	}
	r := onTerminal("y\n")
	if r.code != 0 || !strings.Contains(r.stdout, secret) {
		t.Fatalf("answered y on the terminal: %s", r)
	}
	for _, want := range []string{fullBin + " (pid ", "asks for the token of profile hub.", "Allow? [y/N]"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the terminal shows %q; want %q in it", r.stdout, want)
		}
	}
	r = onTerminal("n\n")
	if r.code != 1 || strings.Contains(r.stdout, secret) || !strings.Contains(r.stdout, "the user denied "+fullBin) ||
		!strings.Contains(r.stdout, "(answered on the terminal)") {
		t.Fatalf("answered n on the terminal: %s", r)
	}

	r = run(t, e, "", "token", "hub") // no terminal
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "could not ask") ||
		!strings.Contains(r.stderr, "run a desktop notification server that shows actions") {
		t.Fatalf("no terminal, no notification server: %s", r)
	}
}
