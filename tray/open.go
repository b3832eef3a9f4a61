package tray

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
)

// Opener opens a URL in the browser, or a file in its application. DesktopOpener is the
// real one.
type Opener interface {
	Open(ctx context.Context, target string) error
}

// DesktopOpener opens targets with the desktop's handler: xdg-open, or open on macOS.
type DesktopOpener struct{}

// Open starts the handler and returns; the handler outlives ctx.
func (DesktopOpener) Open(ctx context.Context, target string) error {
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
		return fmt.Errorf("open %s: %w", target, err)
	}
	go cmd.Wait()
	return nil
}
