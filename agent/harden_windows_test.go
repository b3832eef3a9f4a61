package agent

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/windows"
)

// After Harden, the user's other programs may still wait for the agent, query it and end
// it, but not open it to read its memory.
func TestHardenDeniesMemoryReads(t *testing.T) {
	if err := Harden(); err != nil {
		t.Fatalf("Harden: %v", err)
	}
	pid := uint32(os.Getpid())
	h, err := windows.OpenProcess(windows.PROCESS_VM_READ, false, pid)
	if err == nil {
		windows.CloseHandle(h)
		t.Fatal("after Harden this user may still open the process to read its memory")
	}
	if !errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		t.Errorf("OpenProcess(PROCESS_VM_READ) after Harden: %v, want access denied", err)
	}
	h, err = windows.OpenProcess(processRightsForUser, false, pid)
	if err != nil {
		t.Fatalf("after Harden the user can no longer query or end the process: %v", err)
	}
	windows.CloseHandle(h)
}
