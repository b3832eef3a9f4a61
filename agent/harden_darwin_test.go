package agent

import (
	"testing"

	"golang.org/x/sys/unix"
)

// After Harden the process writes no core dumps.
func TestHardenDisablesCoreDumps(t *testing.T) {
	if err := Harden(); err != nil {
		t.Fatalf("Harden: %v", err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur != 0 || lim.Max != 0 {
		t.Errorf("RLIMIT_CORE after Harden = %d/%d, want 0/0", lim.Cur, lim.Max)
	}
}
