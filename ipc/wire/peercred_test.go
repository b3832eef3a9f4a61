package wire

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// PeerOf names this process, as this user, on both ends of a socket it connected to
// itself; on anything but a Unix socket connection it fails rather than guess.
func TestPeerOfOwnConnection(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	defer server.Close()
	for end, c := range map[string]net.Conn{"client": client, "server": server} {
		p, err := PeerOf(c)
		if err != nil {
			t.Fatalf("%s end: PeerOf: %v", end, err)
		}
		if !p.Known || p.UID != os.Geteuid() {
			t.Errorf("%s end: peer %+v, want this user (uid %d)", end, p, os.Geteuid())
		}
		// FreeBSD's LOCAL_PEERCRED carries no pid in the x/sys version used.
		if p.PID != os.Getpid() && !(runtime.GOOS == "freebsd" && p.PID == 0) {
			t.Errorf("%s end: peer pid %d, want this process, %d", end, p.PID, os.Getpid())
		}
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if p, err := PeerOf(a); err == nil {
		t.Errorf("PeerOf(net.Pipe) = %+v, want an error", p)
	}
}
