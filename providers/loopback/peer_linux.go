package loopback

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// peerUID returns the user that owns the client end of r's connection, a program on this
// machine connected to port on 127.0.0.1. The kernel lists every TCP socket with its
// owner in /proc/net/tcp (IPv4) and /proc/net/tcp6 (an IPv4-mapped client), readable by
// all; the client end is the entry whose local address is r's remote address and whose
// remote address is the listener's. An error says that the owner cannot be told.
func peerUID(r *http.Request, port int) (int, error) {
	remote, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return 0, err
	}
	ip := remote.Addr().Unmap()
	if !ip.Is4() {
		return 0, fmt.Errorf("client address %s is not IPv4", ip)
	}
	server := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
	client := netip.AddrPortFrom(ip, remote.Port())
	var errs []error
	for _, f := range []struct {
		path   string
		format func(netip.AddrPort) string
	}{
		{"/proc/net/tcp", procAddr4},
		{"/proc/net/tcp6", procAddr6},
	} {
		uid, err := socketOwner(f.path, f.format(client), f.format(server))
		if err == nil {
			return uid, nil
		}
		errs = append(errs, err)
	}
	return 0, errors.Join(errs...)
}

var errNoSocket = errors.New("no such socket")

// socketOwner finds the socket from local to remote (as /proc/net/tcp writes addresses) in
// the table at path and returns its uid.
func socketOwner(path, local, remote string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return socketOwnerIn(bufio.NewScanner(f), local, remote)
}

// socketOwnerIn reads a table in the format of /proc/net/tcp: a header line, then
// "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid …".
func socketOwnerIn(sc *bufio.Scanner, local, remote string) (int, error) {
	sc.Scan() // the header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// 01 is ESTABLISHED: a closed connection's entry (TIME_WAIT, owned by nobody) may
		// linger with the same addresses.
		if len(fields) < 8 || fields[1] != local || fields[2] != remote || fields[3] != "01" {
			continue
		}
		return strconv.Atoi(fields[7])
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errNoSocket
}

// procAddr4 writes an IPv4 address and port as /proc/net/tcp does: the address's four
// bytes as one hexadecimal word in the machine's byte order, a colon, the port in hex.
func procAddr4(ap netip.AddrPort) string {
	b := ap.Addr().As4()
	return fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(b[:]), ap.Port())
}

// procAddr6 writes an IPv4-mapped address as /proc/net/tcp6 does: four words of the
// IPv6 address, each in the machine's byte order.
func procAddr6(ap netip.AddrPort) string {
	b := netip.AddrFrom16(ap.Addr().As16()).As16()
	var sb strings.Builder
	for i := 0; i < 16; i += 4 {
		fmt.Fprintf(&sb, "%08X", binary.NativeEndian.Uint32(b[i:i+4]))
	}
	return fmt.Sprintf("%s:%04X", sb.String(), ap.Port())
}
