//go:build !linux && !darwin && !windows

package agent

import "errors"

// ErrNotImplemented is returned by platform features that this OS does not have yet.
var ErrNotImplemented = errors.New("not implemented on this platform")

// Harden is not implemented off Linux; the caller logs the error and carries on.
func Harden() error { return ErrNotImplemented }
