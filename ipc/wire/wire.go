package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Profile is a profile as the API shows it. It never holds a secret.
type Profile struct {
	Name      string          `json:"name"`
	Provider  string          `json:"provider"`
	State     string          `json:"state"`
	ExpiresAt *time.Time      `json:"expires_at,omitempty"`
	Hosts     []string        `json:"hosts"`
	Username  string          `json:"username,omitempty"`
	LastError string          `json:"last_error,omitempty"`
	Login     *LoginChallenge `json:"login,omitempty"`
	// Capabilities: "login", "logout", "push", "sign", "id_token" — what the profile can
	// do besides handing out a credential.
	Capabilities []string `json:"capabilities,omitempty"`
	// KubeToken is "id_token" when kube-credential hands kubectl the profile's ID token;
	// absent for the access token.
	KubeToken string `json:"kube_token,omitempty"`
}

// Can reports whether the profile has a capability.
func (p *Profile) Can(capability string) bool {
	for _, c := range p.Capabilities {
		if c == capability {
			return true
		}
	}
	return false
}

// Profile states.
const (
	StateValid        = "valid"
	StateRefreshing   = "refreshing"
	StateExpired      = "expired"
	StateNeedsLogin   = "needs_login"
	StateLoginPending = "login_pending"
	StateError        = "error"
)

// Credential is a profile's current credential, ready to be put on a request.
type Credential struct {
	Profile      string            `json:"profile"`
	TokenType    string            `json:"token_type"`
	Token        string            `json:"token"`
	ExpiresAt    *time.Time        `json:"expires_at,omitempty"`
	Headers      map[string]string `json:"headers"`
	GRPCMetadata map[string]string `json:"grpc_metadata"`
	Username     string            `json:"username,omitempty"`
}

// LoginChallenge is what a user needs to complete a login. Flow says which: "device"
// (enter UserCode at VerificationURI) or "browser" (open AuthURL in a browser on the
// agent's machine; VerificationURI holds it too, UserCode is empty).
type LoginChallenge struct {
	UserCode                string    `json:"user_code"`
	VerificationURI         string    `json:"verification_uri"`
	VerificationURIComplete string    `json:"verification_uri_complete,omitempty"`
	ExpiresAt               time.Time `json:"expires_at"`
	Interval                int       `json:"interval"` // seconds
	Flow                    string    `json:"flow"`
	AuthURL                 string    `json:"auth_url,omitempty"`
}

// Login flows, as LoginChallenge.Flow and LoginRequest.Flow name them.
const (
	FlowDevice  = "device"
	FlowBrowser = "browser"
)

// LoginRequest is the optional body of POST /v1/profiles/{name}/login. Without it the
// profile's login key decides, as for a caller without a display.
type LoginRequest struct {
	// Flow is "browser" or "device"; empty: the profile's login key.
	Flow string `json:"flow,omitempty"`
	// Display says that the caller can open a browser on the agent's machine, so that
	// login = "auto" takes the browser flow.
	Display bool `json:"display,omitempty"`
}

// Token names of the credential endpoints' token= parameter.
const (
	TokenAccess = "access_token" // the access token (the default)
	TokenID     = "id_token"     // the OpenID Connect ID token
	// TokenKube is the token kube-credential hands kubectl: the one the profile's
	// kube_token names (Profile.KubeToken), the access token by default.
	TokenKube = "kube"
)

// Status describes the agent.
type Status struct {
	Version     string      `json:"version"`
	PID         int         `json:"pid"`
	UptimeS     int64       `json:"uptime_s"`
	Profiles    int         `json:"profiles"`
	SecretStore SecretStore `json:"secret_store"`
	// ConfigError is why the last reload of the config file failed (file:line: key:
	// problem); the agent keeps serving the config it had. Absent once a reload works.
	ConfigError string `json:"config_error,omitempty"`
	// ConfigWarning is a change in the config file that takes effect only when the agent
	// restarts (secret_store), and what to run; absent when there is none.
	ConfigWarning string `json:"config_warning,omitempty"`
}

// SecretStore says where the agent keeps secrets and whether they survive a restart.
type SecretStore struct {
	Kind       string `json:"kind"`
	Persistent bool   `json:"persistent"`
	Warning    string `json:"warning,omitempty"`
}

// Event is one line of GET /v1/events.
type Event struct {
	Type    string    `json:"type"` // "added", "changed", "removed"; "current" for the initial list
	Profile Profile   `json:"profile"`
	Time    time.Time `json:"time"`
}

// ProfileSpec is the body of PUT /v1/profiles/{name}: the profile's config keys, as in the
// TOML table, plus an optional secret that goes straight to the secret store.
type ProfileSpec struct {
	ProfileConfig
	Secret *string `json:"secret,omitempty"`
}

// TokenPush is the body of PUT /v1/profiles/{name}/token.
type TokenPush struct {
	Token     string     `json:"token"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// SecretPut is the body of PUT /v1/profiles/{name}/secret: the profile's new secret (an
// API secret, a client secret), at most 64 KiB, without control characters. Nothing else
// of the profile changes.
type SecretPut struct {
	Secret string `json:"secret"`
}

// Stopping is the answer to POST /v1/stop (202): the agent with this pid stops once the
// answer is sent.
type Stopping struct {
	PID int `json:"pid"`
}

// SignRequest is the body of POST /v1/profiles/{name}/sign: the request to sign. The
// body itself stays with the caller; only its SHA-256 (hex) travels.
type SignRequest struct {
	Method     string            `json:"method"`
	URL        string            `json:"url"`
	Headers    map[string]string `json:"headers,omitempty"`
	BodySHA256 string            `json:"body_sha256,omitempty"`
}

// Signature is the answer to a SignRequest: the headers to add to the request.
type Signature struct {
	Headers map[string]string `json:"headers"`
}

// API error codes.
const (
	CodeBadRequest       = "bad_request"
	CodeNeedsLogin       = "needs_login"
	CodeForbidden        = "forbidden"
	CodeUnknownProfile   = "unknown_profile"
	CodeNoProfile        = "no_profile"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeLoginPending     = "login_pending"
	CodeTooLarge         = "too_large"
	CodeProviderError    = "provider_error"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
	// CodeDenied (403): the profile asks before each use (confirm) and the user denied
	// the request, or gave no answer in time, or could not be asked.
	CodeDenied = "denied"
	// CodeConfirmRequired (403): the profile asks before each use, no desktop notification
	// could ask, and the caller said it can ask on its terminal (HeaderPrompt): it asks
	// the user Error.Message and sends the request again with HeaderConfirm.
	CodeConfirmRequired = "confirm_required"
)

// Terminal confirmation (see docs/api.md "Confirmation on a terminal").
const (
	// HeaderPrompt: "tty" says the client can ask the user on its terminal when the
	// agent cannot ask through the desktop; "handover" that it can hand the command over
	// to a program that can (the one-shot front to the full binary).
	HeaderPrompt = "Authagent-Prompt"
	// HeaderConfirm carries the user's answer to a confirm_required: "ID allow" or
	// "ID deny", with the Error.Confirm id.
	HeaderConfirm = "Authagent-Confirm"
)

// Error is an API error. The clients return it for every non-2xx answer; test its code
// with IsCode, or use errors.As.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Confirm is, with CodeConfirmRequired only, the one-use id of the question to send
	// back in HeaderConfirm.
	Confirm string `json:"confirm,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// errorBody is how an Error travels: {"error":{"code","message"}}.
type errorBody struct {
	Error *Error `json:"error"`
}

// WriteError writes e as an error answer's body.
func WriteError(w io.Writer, e *Error) error {
	return json.NewEncoder(w).Encode(errorBody{Error: e})
}

// ReadError turns a non-2xx answer (its status, status line text such as "502 Bad
// Gateway", and up to 64 KiB of its body) into an *Error: the one the body holds, or one
// with code internal when the body holds none.
func ReadError(status int, statusText string, body []byte) *Error {
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		eb.Error.Status = status
		return eb.Error
	}
	return &Error{Status: status, Code: CodeInternal, Message: fmt.Sprintf("agent answered %s", statusText)}
}

// IsCode reports whether err, or an error it wraps, is an *Error with the given code
// (CodeNoProfile, CodeNeedsLogin, …).
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// AuditEntry is one line of the agent's audit log, as GET /v1/audit returns it: who used
// or changed which profile, when, and with what result. It never holds a token, a secret
// or a whole URL.
type AuditEntry struct {
	Time    time.Time `json:"time"`              // RFC 3339, UTC
	Profile string    `json:"profile,omitempty"` // absent when no profile matched the URL
	// Op is credential, id_token, sign, login, login_done, login_cancel, logout, push,
	// reject, put_profile, delete_profile, set_secret, reload_put, reload_delete (a
	// profile added, changed or removed by a reload of the config file) or refused (a
	// connection from another user).
	Op string `json:"op"`
	// Host is the host[:port] of the URL the request named; absent when it named none.
	Host string `json:"host,omitempty"`
	// Result is "ok" or the error code the caller got (needs_login, forbidden, denied, …).
	Result string `json:"result"`
	// The caller as the agent saw it when the caller connected: its executable and pid, and
	// its parent's (for the git and curl helpers, the program that ran the helper).
	Exe       string `json:"exe,omitempty"`
	PID       int    `json:"pid,omitempty"`
	ParentExe string `json:"parent_exe,omitempty"`
	ParentPID int    `json:"parent_pid,omitempty"`
	// UID is the caller's uid where it is not the agent's own: in refused entries (absent
	// when the kernel did not say).
	UID *int `json:"uid,omitempty"`
}

// AuditLog is the answer to GET /v1/audit: the newest entries that match, oldest first.
type AuditLog struct {
	Entries []AuditEntry `json:"entries"`
}
