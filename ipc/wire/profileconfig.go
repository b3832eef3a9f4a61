package wire

import (
	"encoding/json"
	"fmt"
	"time"
)

// ProfileConfig holds a profile's config keys as PUT /v1/profiles/{name} takes them: the
// keys of a [profile.NAME] table of config.toml (docs/config.md), with the same JSON names
// the agent decodes them by. It never holds a secret. The agent checks the values; a test
// in ipc/server keeps the keys equal to the agent's.
type ProfileConfig struct {
	Provider string `json:"provider"`

	// Common to all kinds.
	Hosts         []string `json:"hosts,omitempty"`
	Username      string   `json:"username,omitempty"`
	RefreshBefore Duration `json:"refresh_before,omitempty"`
	MinValid      Duration `json:"min_valid,omitempty"`
	// Confirm: "always" (true in the config file) or "once-per-exe"; "" never asks.
	Confirm        string   `json:"confirm,omitempty"`
	ConfirmWindow  Duration `json:"confirm_window,omitempty"`
	ConfirmTimeout Duration `json:"confirm_timeout,omitempty"`

	// devicecode (also named oidc).
	Issuer        string   `json:"issuer,omitempty"`
	DeviceAuthURL string   `json:"device_auth_url,omitempty"`
	AuthURL       string   `json:"auth_url,omitempty"`
	TokenURL      string   `json:"token_url,omitempty"`
	RevocationURL string   `json:"revocation_url,omitempty"`
	ClientID      string   `json:"client_id,omitempty"`
	Scopes        []string `json:"scopes,omitempty"`
	Audience      string   `json:"audience,omitempty"`
	Resource      string   `json:"resource,omitempty"`
	Login         string   `json:"login,omitempty"`
	RedirectPort  []int    `json:"redirect_port,omitempty"`
	RedirectPath  string   `json:"redirect_path,omitempty"`
	LoginTimeout  Duration `json:"login_timeout,omitempty"`
	KubeToken     string   `json:"kube_token,omitempty"`

	// apikey.
	Mode       string            `json:"mode,omitempty"`
	KeyID      string            `json:"key_id,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	Region     string            `json:"region,omitempty"`
	Service    string            `json:"service,omitempty"`
	DateHeader string            `json:"date_header,omitempty"`
	AuthHeader string            `json:"auth_header,omitempty"`
	// token_exchange (RFC 8693).
	SubjectToken       string `json:"subject_token,omitempty"`
	SubjectProfile     string `json:"subject_profile,omitempty"`
	SubjectTokenType   string `json:"subject_token_type,omitempty"`
	RequestedTokenType string `json:"requested_token_type,omitempty"`

	// externaljwt; command, env, dir, timeout, lifetime and stdin also in apikey mode
	// "command".
	Command  []string          `json:"command,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Dir      string            `json:"dir,omitempty"`
	Timeout  Duration          `json:"timeout,omitempty"`
	File     string            `json:"file,omitempty"`
	Lifetime Duration          `json:"lifetime,omitempty"`
	JWKSURL  string            `json:"jwks_url,omitempty"`
	Stdin    string            `json:"stdin,omitempty"`
}

// Duration is a time.Duration that travels as a Go duration string ("90s", "5m").
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string; a negative one is an error.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("not a duration string: %s", b)
	}
	return d.UnmarshalText([]byte(s))
}

// UnmarshalText reads a Go duration string ("90s"); a negative one is an error.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (want something like \"90s\" or \"5m\"): %q", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	*d = Duration(v)
	return nil
}
