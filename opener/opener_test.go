package opener

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// $BROWSER comes first for URLs (a list, %s placed), the desktop's handler for the rest;
// a browser can be shown with $BROWSER or a graphical session.
func TestBrowser(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "opened")
	script := filepath.Join(dir, "browser")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > "+out+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BROWSER": "/nonexistent/browser:" + script + " --new-tab %s"}
	o := Browser{Getenv: func(k string) string { return env[k] }}
	if err := o.Open(t.Context(), "https://idp.example/authorize?a=1&b=2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the browser ran", func() bool {
		b, err := os.ReadFile(out)
		return err == nil && string(b) == "--new-tab\nhttps://idp.example/authorize?a=1&b=2\n"
	})
	env["BROWSER"] = "/nonexistent/a:/nonexistent/b"
	if err := o.Open(t.Context(), "https://idp.example/"); err == nil || !strings.Contains(err.Error(), "$BROWSER") {
		t.Errorf("no browser of $BROWSER starts: %v", err)
	}
	// A $BROWSER of only separators and blanks names no browser: the desktop's handler
	// is tried, and an error (xdg-open may be missing) says so in words.
	env["BROWSER"] = " : "
	if err := o.Open(t.Context(), "https://idp.example/secret-path"); err != nil && (strings.Contains(err.Error(), "%!") || strings.Contains(err.Error(), "secret-path")) {
		t.Errorf("blank $BROWSER: %v", err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"BROWSER": "firefox"}, true},
		{map[string]string{"BROWSER": " : "}, false},
		{map[string]string{"DISPLAY": ":0"}, true},
		{map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, true},
	} {
		if got := CanOpenBrowser(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("CanOpenBrowser with %v = %v, want %v", tc.env, got, tc.want)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
