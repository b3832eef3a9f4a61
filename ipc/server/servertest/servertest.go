// Package servertest serves an agent on a socket for the tests of the socket API's clients
// (ipc, ipc/oneshot, login). It is imported by tests only.
package servertest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/ipc/server"
)

// Serve serves a on a new socket, sock if not "" or agent.sock in a temporary directory,
// and returns its path. When the test ends the server stops (a Serve error fails the
// test) and a is closed.
func Serve(t testing.TB, a *agent.Agent, sock string) string {
	t.Helper()
	if sock == "" {
		sock = filepath.Join(t.TempDir(), "agent.sock")
	}
	ln, err := server.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&server.Server{Agent: a}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		a.Close()
	})
	return sock
}
