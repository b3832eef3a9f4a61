package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/mdp/qrterminal/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/login"
	"github.com/authagent/authagent/opener"
)

func newLoginCmd(c *cli) *cobra.Command {
	var noBrowser, browserFlow, deviceFlow bool
	cmd := &cobra.Command{
		Use:   "login [NAME]",
		Short: "Log in with the browser or the device flow (every profile that needs it when NAME is omitted)",
		Long: `Log a profile in. The login runs in the agent; this command shows what to do and returns
when the agent reports success or failure. Ctrl-C cancels the login in the agent.

The browser flow (authorization code with PKCE) opens the identity provider's login page in
your browser ($BROWSER, else the desktop's handler); the agent receives the redirect on
127.0.0.1. If no browser can be opened, the URL is printed: open it in a browser on the
machine the agent runs on, or log in with --device instead. The device flow shows a
verification URL and a user code (and a QR code on a terminal), and opens the browser on it.

Which flow runs: --browser or --device, else the profile's login key; "auto" (the default
of oidc profiles) takes the browser when one can be opened here and the identity provider
has an authorization endpoint, and the device flow otherwise (over SSH, for example).
--no-browser opens nothing, and makes "auto" take the device flow.

Without NAME, every profile that needs a login is logged in, one after another.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{"usage: authagent login [NAME] [--browser | --device]"}
			}
			if browserFlow && deviceFlow {
				return usageError{"--browser and --device exclude each other: choose one flow"}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			lo := loginOpts{open: !noBrowser}
			switch {
			case browserFlow:
				lo.flow = ipc.FlowBrowser
			case deviceFlow:
				lo.flow = ipc.FlowDevice
			}
			names := args
			if len(names) == 0 {
				ps, err := c.client.Profiles(ctx)
				if err != nil {
					return err
				}
				for _, p := range ps {
					if p.Can("login") && p.State != ipc.StateValid && p.State != ipc.StateRefreshing {
						names = append(names, p.Name)
					}
				}
				if len(names) == 0 {
					fmt.Fprintln(os.Stderr, "every profile is logged in")
					return nil
				}
			}
			for _, name := range names {
				if err := runLogin(ctx, c.client, name, lo, os.Stdout); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "do not open a browser (print the URL)")
	cmd.Flags().BoolVar(&browserFlow, "browser", false, "log in with the browser (authorization code flow)")
	cmd.Flags().BoolVar(&deviceFlow, "device", false, "log in with the device flow (a code to enter)")
	return cmd
}

// loginOpts are a login command's choices: the flow ("" for the profile's), and whether
// to open a browser at all.
type loginOpts struct {
	flow string
	open bool
}

// runLogin drives one login in the agent and follows it to its end; what the user must do is
// shown on out, and how it goes on stderr.
func runLogin(ctx context.Context, client *ipc.Client, name string, lo loginOpts, out *os.File) error {
	ui := &loginUI{out: out, stopCountdown: func() {}}
	defer ui.stopCountdown()
	l := &login.Login{Client: client, Opener: opener.Browser{}, UI: ui}
	err := l.Do(ctx, login.Input{Profile: name, Flow: lo.flow, Display: lo.open && opener.CanOpenBrowser(os.Getenv), Wait: true})
	ui.stopCountdown()
	if err == nil {
		fmt.Fprintf(os.Stderr, "logged in to %s\n", name)
	}
	return err
}

// loginUI shows a login on a terminal: what to do on out, the rest on stderr.
type loginUI struct {
	out           *os.File
	stopCountdown func()
}

func (u *loginUI) Challenge(name string, ch *ipc.LoginChallenge, joined, opening bool) {
	if joined {
		fmt.Fprintln(os.Stderr, "a login is already in progress; following it")
	}
	if ch.Flow == ipc.FlowBrowser {
		if opening {
			fmt.Fprintf(u.out, "Opening your browser to log in to %s. If it does not open, open this URL in a browser on this machine:\n\n    %s\n\n", name, ch.AuthURL)
		} else {
			fmt.Fprintf(u.out, "To log in to %s, open this URL in a browser on the machine the agent runs on:\n\n    %s\n\n", name, ch.AuthURL)
			fmt.Fprintln(os.Stderr, "no browser can be opened from here (no $BROWSER, DISPLAY or WAYLAND_DISPLAY, or --no-browser)")
			fmt.Fprintf(os.Stderr, "the login waits for the URL above; or press Ctrl-C and log in with a code instead: `authagent login %s --device`\n", name)
		}
	} else {
		fmt.Fprintf(u.out, "To log in to %s, open\n\n    %s\n\nand enter the code\n\n    %s\n\n", name, ch.VerificationURI, ch.UserCode)
		if ch.VerificationURIComplete != "" && term.IsTerminal(int(u.out.Fd())) {
			fmt.Fprintln(u.out, "or scan this code:")
			qrterminal.GenerateHalfBlock(ch.VerificationURIComplete, qrterminal.L, u.out)
			fmt.Fprintln(u.out)
		}
	}
}

func (u *loginUI) Waiting(name string, ch *ipc.LoginChallenge) {
	what := "the code expires"
	if ch.Flow == ipc.FlowBrowser {
		what = "the login ends"
	}
	u.stopCountdown = countdown(ch.ExpiresAt, what)
}

func (u *loginUI) OpenFailed(name string, ch *ipc.LoginChallenge, err error) {
	if ch.Flow == ipc.FlowBrowser {
		fmt.Fprintf(os.Stderr, "could not open a browser: %v\n", err)
		fmt.Fprintf(os.Stderr, "the login waits for the URL above; or press Ctrl-C and log in with a code instead: `authagent login %s --device`\n", name)
		return
	}
	fmt.Fprintf(os.Stderr, "could not open a browser (%v); open the URL above yourself\n", err)
}

// countdown shows on a terminal how long the login waits for the user (what: "the code
// expires"); the returned func clears it.
func countdown(expires time.Time, what string) func() {
	fd := int(os.Stderr.Fd())
	if expires.IsZero() || !term.IsTerminal(fd) {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			left := time.Until(expires).Round(time.Second)
			if left < 0 {
				left = 0
			}
			fmt.Fprintf(os.Stderr, "\rwaiting for you to log in; %s in %s   ", what, left)
			select {
			case <-done:
				fmt.Fprint(os.Stderr, "\r\033[K")
				return
			case <-t.C:
			}
		}
	}()
	return sync.OnceFunc(func() {
		close(done)
		<-stopped
	})
}

func newLogoutCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "logout NAME",
		Short: "Revoke a profile's refresh token at the IdP and forget it",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.client.Logout(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "logged out of %s\n", args[0])
			return nil
		},
	}
}
