package loopback

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
)

// /proc/net/tcp's addresses: the IPv4 address as a word in the machine's byte order.
func TestProcAddr(t *testing.T) {
	ap := netip.MustParseAddrPort("127.0.0.1:8080")
	four, six := procAddr4(ap), procAddr6(ap)
	le := [2]string{"0100007F:1F90", "0000000000000000FFFF00000100007F:1F90"}
	be := [2]string{"7F000001:1F90", "00000000000000000000FFFF7F000001:1F90"}
	if got := [2]string{four, six}; got != le && got != be {
		t.Errorf("procAddr4, procAddr6 = %q, want %q (little-endian) or %q", got, le, be)
	}
}

// The owner of a connection's client end is read from the table; a closed connection's
// entry (TIME_WAIT, owned by nobody) with the same addresses is not taken for it.
func TestSocketOwnerIn(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   1: 0100007F:A000 0100007F:1F90 06 00000000:00000000 03:00000F7C 00000000     0        0 0 3 0
   2: 0100007F:A000 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0 20 4 30 10 -1
   3: 0100007F:1F90 0100007F:A000 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1
`
	uid, err := socketOwnerIn(bufio.NewScanner(strings.NewReader(table)), "0100007F:A000", "0100007F:1F90")
	if err != nil || uid != 1001 {
		t.Errorf("owner = %d, %v; want 1001", uid, err)
	}
	if _, err := socketOwnerIn(bufio.NewScanner(strings.NewReader(table)), "0100007F:B000", "0100007F:1F90"); err != errNoSocket {
		t.Errorf("a socket not in the table: %v", err)
	}
}

// A connection of this process is found and is its user's.
func TestPeerUIDOwnConnection(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Fatalf("no /proc/net/tcp on Linux: %v", err)
	}
	got := make(chan int, 1)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid, err := peerUID(r, port)
		if err != nil {
			t.Errorf("peerUID: %v", err)
			uid = -1
		}
		got <- uid
	})}
	go srv.Serve(ln)
	defer srv.Close()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if uid := <-got; uid != os.Getuid() {
		t.Errorf("peerUID = %d, want this process's user %d", uid, os.Getuid())
	}
}
