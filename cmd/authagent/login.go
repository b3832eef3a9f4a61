package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/mdp/qrterminal/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/tray"
)

func newLoginCmd(c *cli) *cobra.Command {
	var noBrowser bool
	cmd := &cobra.Command{
		Use:   "login [NAME]",
		Short: "Log in with the device flow (every profile that needs it when NAME is omitted)",
		Long: `Log a profile in with the OAuth 2.0 device flow. The login runs in the agent; this
command shows the verification URL and the user code (and a QR code on a terminal), opens the
browser unless --no-browser is given or there is no display, and returns when the agent
reports success or failure. Ctrl-C cancels the login in the agent.

Without NAME, every devicecode profile that needs a login is logged in, one after another.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{"usage: authagent login [NAME]"}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			names := args
			if len(names) == 0 {
				ps, err := c.client.Profiles(ctx)
				if err != nil {
					return err
				}
				for _, p := range ps {
					if p.Provider == "devicecode" && p.State != ipc.StateValid && p.State != ipc.StateRefreshing {
						names = append(names, p.Name)
					}
				}
				if len(names) == 0 {
					fmt.Fprintln(os.Stderr, "every profile is logged in")
					return nil
				}
			}
			for _, name := range names {
				if err := login(ctx, c.client, name, !noBrowser, os.Stdout); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "do not open a browser")
	return cmd
}

// login drives one login in the agent and follows it to its end; what the user must do is
// shown on out.
func login(ctx context.Context, client *ipc.Client, name string, browser bool, out *os.File) error {
	w, err := client.Watch(ctx, false) // before the login starts, so no event is missed
	if err != nil {
		return err
	}
	defer w.Close()
	started := false
	ch, err := client.Login(ctx, name)
	var ae *ipc.Error
	if errors.As(err, &ae) && ae.Code == ipc.CodeLoginPending {
		p, perr := client.Profile(ctx, name)
		if perr != nil || p.Login == nil {
			return err
		}
		ch, started = p.Login, true // join the login already waiting for the user
		fmt.Fprintln(os.Stderr, "a login is already in progress; following it")
	} else if err != nil {
		return err
	}
	showChallenge(out, name, ch)
	if browser && hasDisplay() {
		target := ch.VerificationURIComplete
		if target == "" {
			target = ch.VerificationURI
		}
		openBrowser(ctx, target)
	}
	stopCountdown := countdown(ch.ExpiresAt)
	defer stopCountdown()

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
		stopCountdown()
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		client.CancelLogin(cctx, name)
		return errors.New("login cancelled")
	case r := <-results:
		stopCountdown()
		if r.err != nil {
			if errors.Is(r.err, io.EOF) {
				return errors.New("the agent stopped during the login; start it and run `authagent login " + name + "` again")
			}
			return r.err
		}
		if r.p.State == ipc.StateValid {
			fmt.Fprintf(os.Stderr, "logged in to %s\n", name)
			return nil
		}
		if r.p.LastError == "" {
			return fmt.Errorf("%s: the login ended with the profile %s; `authagent list` shows it", name, r.p.State)
		}
		return fmt.Errorf("%s: %s", name, r.p.LastError)
	}
}

// showChallenge tells the user what to do, on out; the QR code only when out is a terminal.
func showChallenge(out *os.File, name string, ch *ipc.LoginChallenge) {
	fmt.Fprintf(out, "To log in to %s, open\n\n    %s\n\nand enter the code\n\n    %s\n\n", name, ch.VerificationURI, ch.UserCode)
	if ch.VerificationURIComplete != "" && term.IsTerminal(int(out.Fd())) {
		fmt.Fprintln(out, "or scan this code:")
		qrterminal.GenerateHalfBlock(ch.VerificationURIComplete, qrterminal.L, out)
		fmt.Fprintln(out)
	}
}

// countdown shows on a terminal how long the code stays valid; the returned func clears it.
func countdown(expires time.Time) func() {
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
			fmt.Fprintf(os.Stderr, "\rwaiting for you to log in; the code expires in %s   ", left)
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

func hasDisplay() bool {
	switch runtime.GOOS {
	case "darwin", "windows":
		return true
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

func openBrowser(ctx context.Context, url string) {
	if err := (tray.DesktopOpener{}).Open(ctx, url); err != nil {
		fmt.Fprintf(os.Stderr, "could not open a browser (%v); open the URL above yourself\n", err)
	}
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
