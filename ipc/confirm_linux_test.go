package ipc_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/ipc/server/servertest"
	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
)

// TestClientPrompt: a profile with confirm = true and no desktop to ask on. The client's
// Prompt is called with the agent's question about this very process (it runs the agent's
// executable: the test binary serves and calls), and the request goes again with the
// answer: allowed gets the credential, denied 403 denied. Without Prompt, 403 denied says
// how to answer; a Prompt that fails says why, with the question.
func TestClientPrompt(t *testing.T) {
	store := agent.NewMemoryStore()
	if err := store.Set(context.Background(), "hub/secret", canary); err != nil {
		t.Fatal(err)
	}
	cfg := &agent.Config{Path: filepath.Join(t.TempDir(), "config.toml"), Profiles: map[string]*providers.ProfileConfig{
		"hub": {Provider: "apikey", KeyID: "a1b2", Confirm: providers.ConfirmAlways,
			Headers: map[string]string{"X-API-Key": "{secret}"}},
	}}
	a, err := agent.New(agent.Options{Config: cfg, Store: store, Providers: map[string]providers.Factory{apikey.Name: apikey.New}})
	if err != nil {
		t.Fatal(err)
	}
	sock := servertest.Serve(t, a, "")

	var asked []string
	answer := func(ok bool, err error) func(context.Context, string) (bool, error) {
		return func(_ context.Context, q string) (bool, error) {
			asked = append(asked, q)
			return ok, err
		}
	}

	c := &ipc.Client{Socket: sock, Prompt: answer(true, nil)}
	cred, err := c.Credential(context.Background(), "hub")
	if err != nil || cred.Token != canary {
		t.Fatalf("allowed on the terminal: %v, %v", cred, err)
	}
	if len(asked) != 1 || !strings.Contains(asked[0], "asks for the token of profile hub.") {
		t.Fatalf("asked %q", asked)
	}

	c = &ipc.Client{Socket: sock, Prompt: answer(false, nil)}
	_, err = c.Credential(context.Background(), "hub")
	if !ipc.IsCode(err, ipc.CodeDenied) || !strings.Contains(err.Error(), "(answered on the terminal)") {
		t.Fatalf("denied on the terminal: %v", err)
	}

	c = &ipc.Client{Socket: sock}
	_, err = c.Credential(context.Background(), "hub")
	if !ipc.IsCode(err, ipc.CodeDenied) || !strings.Contains(err.Error(), "run the authagent command on a terminal") {
		t.Fatalf("no Prompt: %v", err)
	}

	c = &ipc.Client{Socket: sock, Prompt: answer(false, errors.New("open /dev/tty: no such device"))}
	_, err = c.Credential(context.Background(), "hub")
	if err == nil || !strings.Contains(err.Error(), "asks for the token of profile hub. The desktop could not ask, and the terminal could not either: open /dev/tty") {
		t.Fatalf("a Prompt that fails: %v", err)
	}
}
