package opener

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Desktop opens targets with the desktop's handler: xdg-open, or open on macOS.
type Desktop struct{}

// Open starts the handler and returns; the handler outlives ctx.
func (Desktop) Open(ctx context.Context, target string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", target)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", target)
	default:
		cmd = exec.Command("xdg-open", target)
	}
	if err := cmd.Start(); err != nil {
		// Not the target in the error: a login's URL is not for logs.
		return fmt.Errorf("open the desktop's handler (%s): %w", cmd.Args[0], err)
	}
	go cmd.Wait()
	return nil
}

// Browser opens http(s) URLs with the browser $BROWSER names, when it is set, and
// everything else (and URLs without $BROWSER) with the desktop's handler. $BROWSER is a
// list of commands separated by ':', tried in order until one starts; a command with %s
// gets the URL there, any other gets it as its last argument (the convention of
// sensible-browser, xdg-open and Python's webbrowser). The browser is started and left
// running; it outlives ctx.
type Browser struct {
	Getenv func(string) string // nil: os.Getenv
}

func (b Browser) getenv(k string) string {
	if b.Getenv != nil {
		return b.Getenv(k)
	}
	return os.Getenv(k)
}

// Open starts the browser on target and returns; an error says that no command of
// $BROWSER (or the desktop's handler) could be started.
func (b Browser) Open(ctx context.Context, target string) error {
	env := b.getenv("BROWSER")
	isURL := strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "http://")
	if env == "" || !isURL {
		return Desktop{}.Open(ctx, target)
	}
	var errs []error
	for _, entry := range strings.Split(env, string(os.PathListSeparator)) {
		args := strings.Fields(entry)
		if len(args) == 0 {
			continue
		}
		substituted := false
		for i, a := range args {
			if strings.Contains(a, "%s") {
				args[i] = strings.ReplaceAll(a, "%s", target)
				substituted = true
			}
		}
		if !substituted {
			args = append(args, target)
		}
		cmd := exec.Command(args[0], args[1:]...)
		if err := cmd.Start(); err != nil {
			errs = append(errs, err)
			continue
		}
		go cmd.Wait()
		return nil
	}
	if len(errs) == 0 { // $BROWSER names no command (only separators or blanks)
		return Desktop{}.Open(ctx, target)
	}
	return fmt.Errorf("open the browser $BROWSER names (%q): %w", env, errors.Join(errs...))
}

// CanOpenBrowser reports whether a browser can be shown to the user from this process:
// $BROWSER is set, or there is a graphical session (always on macOS and Windows;
// DISPLAY or WAYLAND_DISPLAY elsewhere). Over SSH without X forwarding there is none.
func CanOpenBrowser(getenv func(string) string) bool {
	if getenv == nil {
		getenv = os.Getenv
	}
	switch {
	case strings.Trim(getenv("BROWSER"), string(os.PathListSeparator)+" \t") != "":
		return true
	case runtime.GOOS == "darwin", runtime.GOOS == "windows":
		return true
	}
	return getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != ""
}
