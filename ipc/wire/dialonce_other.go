//go:build !unix

package wire

import (
	"context"
	"net"
)

// DialOnce is Dial with the default dialer here.
func (s *ServerCheck) DialOnce(ctx context.Context, sock string) (net.Conn, error) {
	return s.Dial(ctx, sock, nil)
}
