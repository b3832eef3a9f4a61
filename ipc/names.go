package ipc

import (
	"time"

	"github.com/authagent/authagent/ipc/wire"
)

// The socket API's wire types, from package wire; they are documented there and in
// docs/api.md.
type (
	Profile        = wire.Profile
	Credential     = wire.Credential
	LoginChallenge = wire.LoginChallenge
	LoginRequest   = wire.LoginRequest
	Status         = wire.Status
	SecretStore    = wire.SecretStore
	Event          = wire.Event
	ProfileSpec    = wire.ProfileSpec
	ProfileConfig  = wire.ProfileConfig
	Duration       = wire.Duration
	TokenPush      = wire.TokenPush
	SecretPut      = wire.SecretPut
	Stopping       = wire.Stopping
	SignRequest    = wire.SignRequest
	Signature      = wire.Signature
	AuditEntry     = wire.AuditEntry
	AuditQuery     = wire.AuditQuery

	// Error is an API error: every non-2xx answer. Test its code with IsCode.
	Error = wire.Error
	// UntrustedServerError means the client refused a socket another user may serve,
	// before it sent anything. Test for it with IsUntrustedServer.
	UntrustedServerError = wire.UntrustedServerError
	// CredentialOption tunes a credential request: MinValid, ForURL, IDToken.
	CredentialOption = wire.CredentialOption
)

// Profile states.
const (
	StateValid        = wire.StateValid
	StateRefreshing   = wire.StateRefreshing
	StateExpired      = wire.StateExpired
	StateNeedsLogin   = wire.StateNeedsLogin
	StateLoginPending = wire.StateLoginPending
	StateError        = wire.StateError
)

// Login flows, as LoginChallenge.Flow and LoginRequest.Flow name them.
const (
	FlowDevice  = wire.FlowDevice
	FlowBrowser = wire.FlowBrowser
)

// Token names of the credential endpoints' token= parameter.
const (
	TokenAccess = wire.TokenAccess
	TokenID     = wire.TokenID
	TokenKube   = wire.TokenKube
)

// API error codes.
const (
	CodeBadRequest       = wire.CodeBadRequest
	CodeNeedsLogin       = wire.CodeNeedsLogin
	CodeForbidden        = wire.CodeForbidden
	CodeUnknownProfile   = wire.CodeUnknownProfile
	CodeNoProfile        = wire.CodeNoProfile
	CodeNotFound         = wire.CodeNotFound
	CodeMethodNotAllowed = wire.CodeMethodNotAllowed
	CodeLoginPending     = wire.CodeLoginPending
	CodeTooLarge         = wire.CodeTooLarge
	CodeProviderError    = wire.CodeProviderError
	CodeUnavailable      = wire.CodeUnavailable
	CodeInternal         = wire.CodeInternal
	CodeDenied           = wire.CodeDenied
	CodeConfirmRequired  = wire.CodeConfirmRequired
)

// ClientIdle is how long the agent keeps a connection that sends nothing; the Client drops
// its idle connections a second sooner.
const ClientIdle = wire.ClientIdle

var (
	// ErrNoAgent means nothing answers on the socket.
	ErrNoAgent = wire.ErrNoAgent
	// ErrNotImplemented is returned where this OS lacks a feature (such as reading a
	// socket peer's uid); the caller refuses service rather than guess.
	ErrNotImplemented = wire.ErrNotImplemented
)

// DefaultSocketPath is where the agent listens and clients connect: $AUTHAGENT_SOCK, else
// $XDG_RUNTIME_DIR/authagent/agent.sock, else /tmp/authagent-$UID/agent.sock.
func DefaultSocketPath() string { return wire.DefaultSocketPath() }

// SocketPath is the socket a program uses: given (its --socket flag) when set, else
// DefaultSocketPath(); made absolute.
func SocketPath(given string) string { return wire.SocketPath(given) }

// IsCode reports whether err, or an error it wraps, is an *Error with the given code
// (CodeNoProfile, CodeNeedsLogin, …).
func IsCode(err error, code string) bool { return wire.IsCode(err, code) }

// IsUntrustedServer reports whether err, or an error it wraps, is an
// *UntrustedServerError: the client refused the socket because another user may serve it.
func IsUntrustedServer(err error) bool { return wire.IsUntrustedServer(err) }

// MinValid asks for a credential valid at least d longer; the agent refreshes first if
// less is left.
func MinValid(d time.Duration) CredentialOption { return wire.MinValid(d) }

// ForURL asks the agent to check that the profile may send its token to target.
func ForURL(target string) CredentialOption { return wire.ForURL(target) }

// IDToken asks for the profile's OpenID Connect ID token instead of its access token.
// Errors: *Error with code bad_request for a profile that has no ID tokens, needs_login
// when it has none now.
func IDToken() CredentialOption { return wire.IDToken() }

// KubeToken asks for the token kube-credential hands kubectl: the ID token when the
// profile's kube_token says so, else the access token.
func KubeToken() CredentialOption { return wire.KubeToken() }
