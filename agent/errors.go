package agent

import "errors"

// Errors the agent returns, wrapped with context. Package ipc maps them to API error codes
// with errors.Is.
var (
	ErrUnknownProfile = errors.New("unknown profile")
	ErrNoProfile      = errors.New("no profile matches")
	ErrBadRequest     = errors.New("bad request")
	ErrForbidden      = errors.New("forbidden")
	ErrNeedsLogin     = errors.New("needs login")
	ErrLoginPending   = errors.New("login pending")
	ErrProvider       = errors.New("provider error")
	ErrUnavailable    = errors.New("unavailable")
	// ErrTooLarge: a secret over MaxSecretSize; the socket API answers 413 too_large.
	ErrTooLarge = errors.New("too large")
	// ErrDenied: a profile with confirm set was not allowed to serve the request (the user
	// denied it, did not answer in time, or could not be asked); 403 denied.
	ErrDenied = errors.New("denied")
)
