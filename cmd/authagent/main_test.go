package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
)

func TestSuggest(t *testing.T) {
	commands := []string{"add", "git", "list", "login", "logout", "set-secret", "set-token", "status", "stop"}
	for _, tt := range []struct {
		got     string
		choices []string
		want    string
	}{
		{"lsit", commands, "list"}, // two letters swapped: one slip
		{"lst", commands, "list"},  // one left out
		{"set-secrte", commands, "set-secret"},
		{"LIST", commands, "list"},
		{"xyzzy", commands, ""},
		{"apikye", providerNames, "apikey"},
		{"device", providerNames, "devicecode"}, // a prefix
		{"jwt", providerNames, "externaljwt"},   // a part
		{"sigv5", apikeyModes, "sigv4"},
		{"client-credentials", apikeyModes, "client_credentials"},
		{"--provder", []string{"--provider", "--host", "--mode"}, "--provider"},
	} {
		if got := suggest(tt.got, tt.choices); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.got, got, tt.want)
		}
	}
}

// TestAPIKeyModes: the modes --mode offers are the ones apikey.New takes, and no others.
func TestAPIKeyModes(t *testing.T) {
	env := providers.Env{Name: "x"}
	for _, mode := range apikeyModes {
		_, err := apikey.New(&providers.ProfileConfig{Provider: apikey.Name, Mode: mode}, env)
		var ce *providers.ConfigError
		if errors.As(err, &ce) && ce.Key == "mode" {
			t.Errorf("mode %q is offered by --mode but apikey refuses it: %v", mode, err)
		}
	}
	_, err := apikey.New(&providers.ProfileConfig{Provider: apikey.Name, Mode: "nope"}, env)
	var ce *providers.ConfigError
	if !errors.As(err, &ce) || ce.Key != "mode" {
		t.Fatalf("apikey took mode nope: %v", err)
	}
	for _, mode := range apikeyModes {
		if !strings.Contains(ce.Message, `"`+mode+`"`) {
			t.Errorf("apikey's list of modes %q lacks %q, which --mode offers", ce.Message, mode)
		}
	}
}

func TestFlagErrorSuggests(t *testing.T) {
	root := newRoot()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "x", "--provder", "apikey"}, "unknown flag: --provder; did you mean --provider?"},
		{[]string{"list", "--jsn"}, "unknown flag: --jsn; did you mean --json?"},
		{[]string{"curl", "-s", "https://x"}, "curl's own arguments go after --"},
		{[]string{"exec", "hub", "ls", "-l"}, "the command and its arguments go after --"},
	} {
		root.SetArgs(tt.args)
		cmd, err := root.ExecuteC()
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want a usage error saying %q", tt.args, err, tt.want)
		}
		if cmd == nil || cmd.Name() != tt.args[0] {
			t.Errorf("%v: the error belongs to %v, want %s (for its --help)", tt.args, cmd, tt.args[0])
		}
	}
}

func TestOrphanHosts(t *testing.T) {
	ps := []ipc.Profile{
		{Name: "a", Hosts: []string{"shared.example.com", "a.example.com"}},
		{Name: "b", Hosts: []string{"shared.example.com"}},
	}
	if got := orphanHosts(ps, "a"); len(got) != 1 || got[0] != "a.example.com" {
		t.Errorf("orphanHosts(a) = %v, want [a.example.com]", got)
	}
	if got := orphanHosts(ps, "b"); len(got) != 0 {
		t.Errorf("orphanHosts(b) = %v, want none: a still lists its host", got)
	}
}

// TestCannotRun: exec's exit statuses are a shell's: 127 not found, 126 not runnable.
func TestCannotRun(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		command string
		want    int
	}{
		{filepath.Join(dir, "missing"), exitNotFound},
		{"no-such-command-4f2a", exitNotFound},
		{plain, exitNotExecutable},
		{dir, exitNotExecutable},
	} {
		_, err := exec.LookPath(tt.command)
		if err == nil {
			t.Fatalf("%s: found", tt.command)
		}
		var es exitStatus
		if !errors.As(cannotRun(tt.command, err), &es) || es.code != tt.want {
			t.Errorf("%s: %v, want exit %d", tt.command, cannotRun(tt.command, err), tt.want)
		}
	}
}
