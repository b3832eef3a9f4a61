package providers

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// ProfileConfig holds every key a profile table may contain, for all kinds. The agent decodes
// the config file strictly into it (an unknown key is an error with its line), and each
// provider's Factory rejects keys that make no sense for its kind. The same struct is the
// JSON body of PUT /v1/profiles/{name}. It never holds a secret.
type ProfileConfig struct {
	Provider string `toml:"provider" json:"provider"`

	// Common to all kinds.
	Hosts         []string `toml:"hosts,omitempty" json:"hosts,omitempty"`
	Username      string   `toml:"username,omitempty" json:"username,omitempty"`
	RefreshBefore Duration `toml:"refresh_before,omitempty" json:"refresh_before,omitempty"`
	MinValid      Duration `toml:"min_valid,omitempty" json:"min_valid,omitempty"`
	// Confirm makes the agent ask the user before each credential or signature it serves
	// (see ConfirmMode); ConfirmWindow is how long an approval of "once-per-exe" lasts
	// (default 10m) and ConfirmTimeout how long a question waits for its answer (default 30s).
	Confirm        ConfirmMode `toml:"confirm,omitempty" json:"confirm,omitempty"`
	ConfirmWindow  Duration    `toml:"confirm_window,omitempty" json:"confirm_window,omitempty"`
	ConfirmTimeout Duration    `toml:"confirm_timeout,omitempty" json:"confirm_timeout,omitempty"`

	// devicecode (also named oidc).
	Issuer        string   `toml:"issuer,omitempty" json:"issuer,omitempty"`
	DeviceAuthURL string   `toml:"device_auth_url,omitempty" json:"device_auth_url,omitempty"`
	AuthURL       string   `toml:"auth_url,omitempty" json:"auth_url,omitempty"`
	TokenURL      string   `toml:"token_url,omitempty" json:"token_url,omitempty"`
	RevocationURL string   `toml:"revocation_url,omitempty" json:"revocation_url,omitempty"`
	ClientID      string   `toml:"client_id,omitempty" json:"client_id,omitempty"`
	Scopes        []string `toml:"scopes,omitempty" json:"scopes,omitempty"`
	Audience      string   `toml:"audience,omitempty" json:"audience,omitempty"`
	Resource      string   `toml:"resource,omitempty" json:"resource,omitempty"`
	// Login is how `authagent login` logs in: "auto", "browser" or "device".
	Login string `toml:"login,omitempty" json:"login,omitempty"`
	// RedirectPort and RedirectPath make the browser login's loopback redirect URI
	// http://127.0.0.1:PORT/PATH; no port (or 0) is an ephemeral one.
	RedirectPort Ports    `toml:"redirect_port,omitempty" json:"redirect_port,omitempty"`
	RedirectPath string   `toml:"redirect_path,omitempty" json:"redirect_path,omitempty"`
	LoginTimeout Duration `toml:"login_timeout,omitempty" json:"login_timeout,omitempty"`
	// KubeToken is the token `authagent kube-credential` hands kubectl: "access_token"
	// (the default) or "id_token".
	KubeToken string `toml:"kube_token,omitempty" json:"kube_token,omitempty"`

	// apikey.
	Mode     string            `toml:"mode,omitempty" json:"mode,omitempty"`
	KeyID    string            `toml:"key_id,omitempty" json:"key_id,omitempty"`
	Headers  map[string]string `toml:"headers,omitempty" json:"headers,omitempty"`
	Metadata map[string]string `toml:"metadata,omitempty" json:"metadata,omitempty"`
	Region   string            `toml:"region,omitempty" json:"region,omitempty"`
	Service  string            `toml:"service,omitempty" json:"service,omitempty"`
	// sigv4: the API's own names for the date and Authorization headers, where it uses
	// the SigV4 algorithm under other names (DCI-style APIs).
	DateHeader string `toml:"date_header,omitempty" json:"date_header,omitempty"`
	AuthHeader string `toml:"auth_header,omitempty" json:"auth_header,omitempty"`
	// token_exchange (RFC 8693): where the subject token comes from, either "secret"
	// (the default) or "pushed", or else another profile's token; the token types
	// (a short name such as "access_token", or the full URN).
	SubjectToken       string `toml:"subject_token,omitempty" json:"subject_token,omitempty"`
	SubjectProfile     string `toml:"subject_profile,omitempty" json:"subject_profile,omitempty"`
	SubjectTokenType   string `toml:"subject_token_type,omitempty" json:"subject_token_type,omitempty"`
	RequestedTokenType string `toml:"requested_token_type,omitempty" json:"requested_token_type,omitempty"`

	// externaljwt; command, env, dir, timeout, lifetime and stdin also in apikey mode
	// "command".
	Command  []string          `toml:"command,omitempty" json:"command,omitempty"`
	Env      map[string]string `toml:"env,omitempty" json:"env,omitempty"`
	Dir      string            `toml:"dir,omitempty" json:"dir,omitempty"`
	Timeout  Duration          `toml:"timeout,omitempty" json:"timeout,omitempty"`
	File     string            `toml:"file,omitempty" json:"file,omitempty"`
	Lifetime Duration          `toml:"lifetime,omitempty" json:"lifetime,omitempty"`
	JWKSURL  string            `toml:"jwks_url,omitempty" json:"jwks_url,omitempty"`
	// Stdin is what a command (externaljwt, apikey mode command) reads: "secret" for the
	// profile's secret and key id as JSON; unset for nothing.
	Stdin string `toml:"stdin,omitempty" json:"stdin,omitempty"`
}

// SubKey is the ConfigError key of entry name in table, as the config file spells it:
// "headers.X-Api-Key", or "headers.\"X.Api\"" when name is not a bare TOML key.
func SubKey(table, name string) string {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return table + "." + strconv.Quote(name)
		}
	}
	if name == "" {
		return table + `.""`
	}
	return table + "." + name
}

// ConfirmMode is a profile's confirm key: "" (the default: never ask), ConfirmAlways
// (written confirm = true or "always": ask before every use) or ConfirmOncePerExe (ask
// once per executable, then remember the approval for confirm_window). In TOML and JSON it
// is a boolean or a string; a string is taken as written and checked by the agent, so that
// its error can name the line.
type ConfirmMode string

// The values of ConfirmMode.
const (
	ConfirmAlways     ConfirmMode = "always"
	ConfirmOncePerExe ConfirmMode = "once-per-exe"
)

// UnmarshalText reads a TOML boolean (go-toml hands it over as "true" or "false"). Any
// other value (a number) is kept as written, for the agent to refuse with its line.
func (m *ConfirmMode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "true":
		*m = ConfirmAlways
	case "false":
		*m = ""
	default:
		*m = ConfirmMode(b)
	}
	return nil
}

// UnmarshalJSON reads a boolean or a string.
func (m *ConfirmMode) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*m = ConfirmMode(s)
		return nil
	}
	return m.UnmarshalText(b)
}

// Ports is a list of TCP ports, written as one port (8000) or a list ([8000, 18000]) in
// TOML and JSON.
type Ports []int

// UnmarshalText reads one port written as a number or a string: go-toml hands an integer
// that goes into a list type here.
func (p *Ports) UnmarshalText(b []byte) error {
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("not a port number (want a number such as 8000, or a list such as [8000, 18000]): %q", b)
	}
	*p = Ports{n}
	return nil
}

// UnmarshalJSON reads a port (8000 or "8000") or a list of ports ([8000, 18000]).
func (p *Ports) UnmarshalJSON(b []byte) error {
	var list []int
	if json.Unmarshal(b, &list) == nil {
		*p = list
		return nil
	}
	var n int
	if json.Unmarshal(b, &n) == nil {
		*p = Ports{n}
		return nil
	}
	var str string
	if json.Unmarshal(b, &str) == nil {
		return p.UnmarshalText([]byte(str))
	}
	return fmt.Errorf("not a port or a list of ports: %s", b)
}

// Duration is a time.Duration written as a Go duration string ("90s", "5m") in TOML and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

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

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("not a duration string: %s", b)
	}
	return d.UnmarshalText([]byte(s))
}

// CheckKeys returns a *ConfigError for the first key that is set in cfg but not among the
// keys the kind accepts. The common keys (provider, hosts, username, refresh_before,
// min_valid, confirm, confirm_window, confirm_timeout) are always accepted; a username that could never be sent (CheckSendable: it
// goes to git line by line) is refused.
func CheckKeys(cfg *ProfileConfig, kind string, accepted ...string) error {
	if err := CheckSendable("username", cfg.Username); err != nil {
		return err
	}
	ok := map[string]bool{"provider": true, "hosts": true, "username": true, "refresh_before": true, "min_valid": true,
		"confirm": true, "confirm_window": true, "confirm_timeout": true}
	for _, k := range accepted {
		ok[k] = true
	}
	v := reflect.ValueOf(cfg).Elem()
	t := v.Type()
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if !ok[key] && !v.Field(i).IsZero() {
			return &ConfigError{Key: key, Message: fmt.Sprintf("not used by provider %q; remove it", kind)}
		}
	}
	return nil
}
