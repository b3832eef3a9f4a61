package ipc_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/ipc/server/servertest"
	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
)

const canary = "canary-5f0d8e"

type env struct {
	client *ipc.Client
	sock   string
}

// startServer runs an agent with one apikey profile "hub" behind a real socket.
func startServer(t testing.TB) *env {
	t.Helper()
	return startServerOn(t, filepath.Join(t.TempDir(), "run", "agent.sock"))
}

// startServerOn is startServer on the socket path sock.
func startServerOn(t testing.TB, sock string) *env {
	t.Helper()
	store := agent.NewMemoryStore()
	if err := store.Set(context.Background(), "hub/secret", canary); err != nil {
		t.Fatal(err)
	}
	cfg := &agent.Config{Path: filepath.Join(t.TempDir(), "config.toml"), Profiles: map[string]*providers.ProfileConfig{
		"hub": {Provider: "apikey", KeyID: "a1b2", Hosts: []string{"api.example.com", "127.0.0.1"},
			Headers: map[string]string{"X-API-Key-ID": "{key_id}", "X-API-Key": "{secret}"}},
	}}
	a, err := agent.New(agent.Options{Config: cfg, Store: store,
		Providers: map[string]providers.Factory{apikey.Name: apikey.New}})
	if err != nil {
		t.Fatal(err)
	}
	servertest.Serve(t, a, sock)
	return &env{client: &ipc.Client{Socket: sock}, sock: sock}
}
