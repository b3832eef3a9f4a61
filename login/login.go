// Package login logs a profile in through the agent, for the CLI and the tray alike: it
// starts a login in the agent or joins the one already waiting for the user, shows the
// user what to do, opens the login page when a browser can be opened here, and, for the
// CLI, follows the login to its end. The login itself (device or browser flow) runs in
// the agent; no secret passes through this package.
package login

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/authagent/authagent/ipc"
)

// Opener opens the login page; opener.Browser is the real one.
type Opener interface {
	Open(ctx context.Context, target string) error
}

// UI shows the user what a login needs: the CLI prints it, the tray raises notifications.
type UI interface {
	// Challenge shows what to do for the login ch of profile name. joined: the login was
	// already waiting for the user; opening: Login opens the login page next.
	Challenge(name string, ch *ipc.LoginChallenge, joined, opening bool)
	// OpenFailed says that the login page could not be opened; the login goes on.
	OpenFailed(name string, ch *ipc.LoginChallenge, err error)
	// Waiting says that Do now waits for the login to end (Input.Wait only).
	Waiting(name string, ch *ipc.LoginChallenge)
}

// Login is the use case "log in to a profile". Client, Opener and UI are required.
type Login struct {
	Client *ipc.Client
	Opener Opener
	UI     UI
}

// Input is what to log in to, and how.
type Input struct {
	Profile string
	// Flow is ipc.FlowBrowser or ipc.FlowDevice; "": the profile's login key decides.
	Flow string
	// Display says a browser can be opened here: the login page is opened, and a profile
	// with login = "auto" takes the browser flow.
	Display bool
	// Wait follows the login to its end. Cancelling ctx then cancels the login in the agent.
	Wait bool
}

// cancelTimeout bounds cancelling a login in the agent once the caller gave up.
const cancelTimeout = 5 * time.Second

// Do starts a login of in.Profile in the agent, or joins the one that waits for the user
// (the agent answers login_pending), shows the challenge through UI and opens its page
// when in.Display. Without in.Wait it returns then. With in.Wait it returns once the login
// ended: nil when the profile is valid; otherwise an error that says why (the profile's
// last_error), "login cancelled" when ctx ended first, or that the agent stopped. Errors of
// the agent are *ipc.Error (unknown_profile, bad_request for a profile without a login).
func (l *Login) Do(ctx context.Context, in Input) error {
	var w *ipc.Watcher
	if in.Wait {
		var err error
		if w, err = l.Client.Watch(ctx, false); err != nil { // before the login starts, so no event is missed
			return err
		}
		defer w.Close()
	}
	opts := []ipc.LoginOption{ipc.Display(in.Display)}
	if in.Flow != "" {
		opts = append(opts, ipc.Flow(in.Flow))
	}
	ch, err := l.Client.Login(ctx, in.Profile, opts...)
	joined := false
	if ipc.IsCode(err, ipc.CodeLoginPending) {
		p, perr := l.Client.Profile(ctx, in.Profile)
		if perr != nil || p.Login == nil {
			return err
		}
		ch, joined = p.Login, true
	} else if err != nil {
		return err
	}
	l.UI.Challenge(in.Profile, ch, joined, in.Display)
	if in.Display {
		if err := l.Opener.Open(ctx, Page(ch)); err != nil {
			l.UI.OpenFailed(in.Profile, ch, err)
		}
	}
	if !in.Wait {
		return nil
	}
	l.UI.Waiting(in.Profile, ch)
	return l.wait(ctx, w, in.Profile, joined)
}

// wait follows the events of profile name until its login ends. started: the login was
// seen waiting already.
func (l *Login) wait(ctx context.Context, w *ipc.Watcher, name string, started bool) error {
	type result struct {
		p   ipc.Profile
		err error
	}
	results := make(chan result, 1)
	go func() {
		for {
			ev, err := w.Next()
			if err != nil {
				results <- result{err: err}
				return
			}
			if ev.Profile.Name != name {
				continue
			}
			if ev.Profile.Login != nil {
				started = true
				continue
			}
			if started {
				results <- result{p: ev.Profile}
				return
			}
		}
	}()
	select {
	case <-ctx.Done():
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
		defer cancel()
		l.Client.CancelLogin(cctx, name)
		return errors.New("login cancelled")
	case r := <-results:
		if r.err != nil {
			if errors.Is(r.err, io.EOF) {
				return errors.New("the agent stopped during the login; start it and run `authagent login " + name + "` again")
			}
			return r.err
		}
		if r.p.State == ipc.StateValid {
			return nil
		}
		if r.p.LastError == "" {
			return fmt.Errorf("%s: the login ended with the profile %s; `authagent list` shows it", name, r.p.State)
		}
		return fmt.Errorf("%s: %s", name, r.p.LastError)
	}
}

// Page is the page a login waits for the user on: the browser flow's authorization page,
// or the device flow's verification page (with the code in it, when the IdP offers one).
func Page(ch *ipc.LoginChallenge) string {
	if ch.AuthURL != "" {
		return ch.AuthURL
	}
	if ch.VerificationURIComplete != "" {
		return ch.VerificationURIComplete
	}
	return ch.VerificationURI
}
