package packaging

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLayout(t *testing.T) {
	prefix := t.TempDir()
	front := filepath.Join(prefix, "bin", "authagent")
	full := filepath.Join(prefix, "libexec", "authagent", "authagent")
	if got := FullBinary(front); got != full {
		t.Errorf("FullBinary(%s) = %s, want %s", front, got, full)
	}
	if got := Front(full); got != full {
		t.Errorf("Front without a front installed = %s, want the full binary itself", got)
	}
	for _, p := range []string{front, full} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got := Front(full); got != front {
		t.Errorf("Front(%s) = %s, want %s", full, got, front)
	}
	elsewhere := filepath.Join(prefix, "go", "bin", "authagent") // go install: one binary
	if got := Front(elsewhere); got != elsewhere {
		t.Errorf("Front(%s) = %s, want itself", elsewhere, got)
	}
}
