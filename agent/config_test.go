package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/authagent/authagent/providers"
)

// designConfig is the example from DESIGN.md, "Configuration".
const designConfig = `secret_store = "keyring"            # or "memory": nothing survives a restart

[profile.work]                      # device code login against an OIDC provider
provider  = "devicecode"
issuer    = "https://login.example.com"      # discovery; or device_auth_url + token_url (+ revocation_url)
client_id = "cli"                            # a client secret, if any, goes in as the profile's secret
scopes    = ["openid", "profile", "offline_access"]
audience  = "https://api.example.com"        # sent as an extra parameter where the IdP wants it
hosts     = ["api.example.com", "git.example.com"]

[profile.hub]                       # static API key as headers and gRPC metadata
provider = "apikey"
mode     = "headers"
key_id   = "a1b2c3"
headers  = { "X-API-Key-ID" = "{key_id}", "X-API-Key" = "{secret}" }
metadata = { "auth-token" = "{secret}" }     # gRPC metadata; default: the headers, lowercased

[profile.svc]                       # key + secret traded for a short-lived token
provider  = "apikey"
mode      = "client_credentials"
key_id    = "svc-client"                     # the OAuth client_id; the secret is the client_secret
token_url = "https://login.example.com/oauth/token"
scopes    = ["api"]

[profile.dci]                       # requests signed in the agent (AWS Signature V4 algorithm)
provider = "apikey"
mode     = "sigv4"
key_id   = "remoteci/abc"
region   = "us-east-1"
service  = "api"

[profile.ci]                        # a JWT minted by another program
provider = "externaljwt"
command  = ["vault", "read", "-field=token", "auth/jwt/token"]
# or: file = "/var/run/secrets/tokens/api"   # re-read when it changes
# or neither: tokens are pushed with ` + "`authagent set-token ci`" + ` / PUT …/token
`

func designProfiles() map[string]*providers.ProfileConfig {
	return map[string]*providers.ProfileConfig{
		"work": {
			Provider: "devicecode",
			Issuer:   "https://login.example.com",
			ClientID: "cli",
			Scopes:   []string{"openid", "profile", "offline_access"},
			Audience: "https://api.example.com",
			Hosts:    []string{"api.example.com", "git.example.com"},
		},
		"hub": {
			Provider: "apikey",
			Mode:     "headers",
			KeyID:    "a1b2c3",
			Headers:  map[string]string{"X-API-Key-ID": "{key_id}", "X-API-Key": "{secret}"},
			Metadata: map[string]string{"auth-token": "{secret}"},
		},
		"svc": {
			Provider: "apikey",
			Mode:     "client_credentials",
			KeyID:    "svc-client",
			TokenURL: "https://login.example.com/oauth/token",
			Scopes:   []string{"api"},
		},
		"dci": {
			Provider: "apikey",
			Mode:     "sigv4",
			KeyID:    "remoteci/abc",
			Region:   "us-east-1",
			Service:  "api",
		},
		"ci": {
			Provider: "externaljwt",
			Command:  []string{"vault", "read", "-field=token", "auth/jwt/token"},
		},
	}
}

// profileCmp treats nil and empty slices and maps alike: omitempty drops empty ones.
var profileCmp = cmpopts.EquateEmpty()

func writeConfigFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readConfigFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// configErrs flattens an error from ParseConfig into its *ConfigErrors.
func configErrs(t *testing.T, err error) []*ConfigError {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*ConfigError
	for _, e := range errs {
		var ce *ConfigError
		if !errors.As(e, &ce) {
			t.Fatalf("error %v (%T) is not a *ConfigError", e, e)
		}
		out = append(out, ce)
	}
	return out
}

func TestConfigParseDesignExample(t *testing.T) {
	path := writeConfigFile(t, designConfig)
	got, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Path != path || got.SecretStore != "keyring" {
		t.Errorf("Path, SecretStore = %q, %q; want %q, keyring", got.Path, got.SecretStore, path)
	}
	if diff := cmp.Diff(designProfiles(), got.Profiles, profileCmp); diff != "" {
		t.Errorf("profiles (-want +got):\n%s", diff)
	}
}

func TestConfigParse(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		wantStore string
		want      map[string]*providers.ProfileConfig
	}{
		{"empty", "", "keyring", map[string]*providers.ProfileConfig{}},
		{"memory", "secret_store = \"memory\"\n", "memory", map[string]*providers.ProfileConfig{}},
		{
			"durations and quoted name",
			"[profile.\"a.b\"]\nprovider = \"externaljwt\"\ntimeout = \"90s\"\nrefresh_before = \"5m\"\n",
			"keyring",
			map[string]*providers.ProfileConfig{"a.b": {
				Provider: "externaljwt", Timeout: providers.Duration(90 * time.Second), RefreshBefore: providers.Duration(5 * time.Minute),
			}},
		},
		{
			"dotted keys and sub-table",
			"profile.x.provider = \"apikey\"\n[profile.y]\nprovider = \"apikey\"\n[profile.y.headers]\nA = \"b\"\n",
			"keyring",
			map[string]*providers.ProfileConfig{
				"x": {Provider: "apikey"},
				"y": {Provider: "apikey", Headers: map[string]string{"A": "b"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig("c.toml", []byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if got.SecretStore != tt.wantStore {
				t.Errorf("SecretStore = %q, want %q", got.SecretStore, tt.wantStore)
			}
			if diff := cmp.Diff(tt.want, got.Profiles, profileCmp); diff != "" {
				t.Errorf("profiles (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigParseErrors(t *testing.T) {
	type want struct {
		line int
		key  string
		msg  string // substring of Message
	}
	tests := []struct {
		name string
		doc  string
		want []want
	}{
		{
			"unknown key",
			"# c\n[profile.work]\nprovider = \"devicecode\"\nscopess = [\"a\"]\n",
			[]want{{4, "profile.work.scopess", `unknown key; did you mean "scopes"?`}},
		},
		{
			"every unknown key",
			"bogus = 1\n[profile.work]\nprovider = \"devicecode\"\nscopess = [\"a\"]\n[profile.hub]\nprovider = \"apikey\"\nfoo = 1\n",
			[]want{{1, "bogus", "unknown key"}, {4, "profile.work.scopess", "unknown key"}, {7, "profile.hub.foo", "unknown key"}},
		},
		{
			"unknown table",
			"[profiles.work]\nprovider = \"x\"\n",
			[]want{{1, "profiles.work", `unknown table; did you mean "profile"?`}},
		},
		{
			"unknown sub-table",
			"[profile.work]\nprovider = \"x\"\n[profile.work.header]\nA = \"b\"\n",
			[]want{{3, "profile.work.header", `did you mean "headers"?`}},
		},
		{
			"wrong type",
			"[profile.work]\nprovider = \"devicecode\"\nhosts = \"x\"\n",
			[]want{{3, "profile.work.hosts", "want an array of strings, not a string"}},
		},
		{
			"wrong element type",
			"[profile.work]\nprovider = \"devicecode\"\n\nscopes = [\"a\", 2]\n",
			[]want{{4, "profile.work.scopes", "want an array of strings"}},
		},
		{
			"wrong map value type",
			"[profile.hub]\nprovider = \"apikey\"\nheaders = { A = 1 }\n",
			[]want{{3, "profile.hub.headers", "want a table of strings"}},
		},
		{
			"profile not a table",
			"[profile]\nwork = 1\n",
			[]want{{2, "profile.work", "want a table, not an integer"}},
		},
		{
			"bad duration",
			"[profile.ci]\nprovider = \"externaljwt\"\ntimeout = \"soon\"\n",
			[]want{{3, "profile.ci.timeout", "not a duration"}},
		},
		{
			"duration as number",
			"[profile.ci]\nprovider = \"externaljwt\"\nmin_valid = 30\n",
			[]want{{3, "profile.ci.min_valid", `want a duration string such as "90s" or "5m", not an integer`}},
		},
		{
			"syntax error",
			"[profile.work]\nprovider = \"devicecode\nhosts = []\n",
			[]want{{2, "", ""}},
		},
		{
			"duplicate key",
			"[profile.work]\nprovider = \"a\"\nprovider = \"b\"\n",
			[]want{{3, "profile.work.provider", "already defined"}},
		},
		{
			"missing provider",
			"[profile.ok]\nprovider = \"apikey\"\n\n[profile.work]   # no provider\nhosts = [\"a\"]\n",
			[]want{{4, "profile.work.provider", "missing"}},
		},
		{
			"empty profile",
			"[profile.work]\n",
			[]want{{1, "profile.work.provider", "missing"}},
		},
		{
			"bad name",
			"[profile.\"-work\"]\nprovider = \"apikey\"\n",
			[]want{{1, "profile.-work", "bad profile name"}},
		},
		{
			"name too long",
			"[profile." + strings.Repeat("a", 65) + "]\nprovider = \"apikey\"\n",
			[]want{{1, "profile." + strings.Repeat("a", 65), "bad profile name"}},
		},
		{
			"bad secret store",
			"\nsecret_store = \"vault\"\n",
			[]want{{2, "secret_store", `"vault" is not a secret store`}},
		},
		{
			"secret store type",
			"secret_store = 1\n",
			[]want{{1, "secret_store", "want a string, not an integer"}},
		},
		{
			"key case",
			"[profile.work]\nProvider = \"devicecode\"\n",
			[]want{{2, "profile.work.Provider", `did you mean "provider"?`}},
		},
		{
			"unknown keys and a wrong type",
			"[profiles.x]\nprovider = \"x\"\n[profile.work]\nprovider = \"x\"\nscopess = 1\nmode = 1\n[profile.work.header]\nA = \"b\"\n",
			[]want{
				{1, "profiles.x", "unknown table"},
				{5, "profile.work.scopess", `did you mean "scopes"?`},
				{6, "profile.work.mode", "want a string, not an integer"},
				{7, "profile.work.header", `unknown table; did you mean "headers"?`},
			},
		},
		{
			"unknown key and missing provider together",
			"[profile.work]\nprovidr = \"devicecode\"\n",
			[]want{{1, "profile.work.provider", "missing"}, {2, "profile.work.providr", `did you mean "provider"?`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfigFile(t, tt.doc)
			_, err := LoadConfig(path)
			if err == nil {
				t.Fatal("LoadConfig succeeded, want an error")
			}
			got := configErrs(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d: %v", len(got), len(tt.want), err)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Path != path || g.Line != w.line || g.Key != w.key || !strings.Contains(g.Message, w.msg) {
					t.Errorf("error %d = %+v; want path %s, line %d, key %q, message containing %q", i, *g, path, w.line, w.key, w.msg)
				}
				wantPrefix := fmt.Sprintf("%s:%d: ", path, w.line)
				if w.key != "" {
					wantPrefix += w.key + ": "
				}
				if !strings.HasPrefix(g.Error(), wantPrefix) {
					t.Errorf("Error() = %q, want prefix %q", g.Error(), wantPrefix)
				}
			}
		})
	}
}

func TestConfigErrorString(t *testing.T) {
	tests := []struct {
		err  ConfigError
		want string
	}{
		{ConfigError{Path: "c.toml", Line: 3, Key: "profile.work.hosts", Message: "bad"}, "c.toml:3: profile.work.hosts: bad"},
		{ConfigError{Path: "c.toml", Key: "profile.work.hosts", Message: "bad"}, "c.toml: profile.work.hosts: bad"},
		{ConfigError{Path: "c.toml", Line: 1, Message: "bad"}, "c.toml:1: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestConfigLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "config.toml")
	got, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{Path: path, SecretStore: "keyring", Profiles: map[string]*providers.ProfileConfig{}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(Config{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestConfigDefaultPath(t *testing.T) {
	tests := []struct {
		name, agentConfig, xdg, home, want string
	}{
		{"explicit", "/etc/a.toml", "/x", "/h", "/etc/a.toml"},
		{"xdg", "", "/x", "/h", "/x/authagent/config.toml"},
		{"relative xdg ignored", "", "x", "/h", "/h/.config/authagent/config.toml"},
		{"home", "", "", "/h", "/h/.config/authagent/config.toml"},
		{"nothing", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AUTHAGENT_CONFIG", tt.agentConfig)
			t.Setenv("XDG_CONFIG_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			got, err := DefaultConfigPath()
			if tt.want == "" {
				if err == nil {
					t.Fatalf("DefaultConfigPath() = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("DefaultConfigPath() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestConfigLocate(t *testing.T) {
	path := writeConfigFile(t, designConfig)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		profile string
		err     error
		want    *ConfigError
	}{
		{"key", "hub", &providers.ConfigError{Key: "mode", Message: "bad mode"},
			&ConfigError{Path: path, Line: 13, Key: "profile.hub.mode", Message: "bad mode"}},
		{"wrapped", "work", fmt.Errorf("devicecode: %w", &providers.ConfigError{Key: "scopes", Message: "need openid"}),
			&ConfigError{Path: path, Line: 7, Key: "profile.work.scopes", Message: "need openid"}},
		{"key not in file", "dci", &providers.ConfigError{Key: "token_url", Message: "required"},
			&ConfigError{Path: path, Line: 25, Key: "profile.dci.token_url", Message: "required"}},
		{"key inside a table", "hub", &providers.ConfigError{Key: "headers.X-API-Key", Message: "bad"},
			&ConfigError{Path: path, Line: 15, Key: "profile.hub.headers.X-API-Key", Message: "bad"}},
		{"key inside a table, not in file", "hub", &providers.ConfigError{Key: "headers.Nope", Message: "bad"},
			&ConfigError{Path: path, Line: 15, Key: "profile.hub.headers.Nope", Message: "bad"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cfg.Locate(tt.profile, tt.err)
			var ce *ConfigError
			if !errors.As(got, &ce) {
				t.Fatalf("Locate = %v (%T), want a *ConfigError", got, got)
			}
			if diff := cmp.Diff(tt.want, ce); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	t.Run("other error", func(t *testing.T) {
		base := errors.New("boom")
		got := cfg.Locate("ci", base)
		if !errors.Is(got, base) {
			t.Errorf("Locate = %v, want it to wrap %v", got, base)
		}
		if want := fmt.Sprintf("%s:32: profile ci: boom", path); got.Error() != want {
			t.Errorf("Locate = %q, want %q", got, want)
		}
	})
}

// handEdited is a config as a person writes it: comments, odd spacing, a quoted header,
// sub-tables and a multi-line string that looks like table headers.
const handEdited = `# My authagent config.
# Keep secrets out of here.

secret_store = "keyring"   # the default

# Work account.
[profile.work]
provider  = "devicecode"     # OIDC
issuer    = "https://login.example.com"
client_id = "cli"
hosts     = [ "api.example.com" ]

  # Static key; sub-table on purpose.
  [ profile."hub" ]
  provider = "apikey"
  mode = 'headers'
  key_id = "k1"

  [profile.hub.headers]   # sent as is
  X-Key = "{secret}"

# CI token, the command is a script.
[profile.ci]
provider = "externaljwt"
command = ["sh", "-c", """
cat <<EOF
[profile.hub]
[profile.new]
EOF
"""]
# or: file = "/run/token"
`

func TestConfigWriteProfile(t *testing.T) {
	newCfg := &providers.ProfileConfig{
		Provider: "apikey",
		Mode:     "headers",
		KeyID:    "k2",
		Headers:  map[string]string{"X-API-Key": "{secret}", "X.Dotted": `it's "quoted"`},
		Hosts:    []string{"hub.example.com"},
	}
	tests := []struct {
		name   string
		file   string
		prof   string
		cfg    *providers.ProfileConfig
		before string // the new file starts with this
		after  string // and ends with this
	}{
		{
			name:   "append keeps the file",
			file:   handEdited,
			prof:   "new",
			cfg:    newCfg,
			before: handEdited + "\n[profile.new]\n",
		},
		{
			name:   "append without final newline",
			file:   strings.TrimSuffix(handEdited, "\n"),
			prof:   "new",
			cfg:    newCfg,
			before: handEdited + "\n[profile.new]\n",
		},
		{
			name:   "append to a file ending in a blank line",
			file:   handEdited + "\n",
			prof:   "new",
			cfg:    newCfg,
			before: handEdited + "\n[profile.new]\n",
		},
		{
			name:   "replace first",
			file:   handEdited,
			prof:   "work",
			cfg:    newCfg,
			before: handEdited[:strings.Index(handEdited, "[profile.work]")] + "[profile.work]\n",
			after:  handEdited[strings.Index(handEdited, "\n  # Static key"):],
		},
		{
			name:   "replace middle with quoted header and sub-table",
			file:   handEdited,
			prof:   "hub",
			cfg:    newCfg,
			before: handEdited[:strings.Index(handEdited, "  [ profile.\"hub\" ]")] + "[profile.hub]\n",
			after:  handEdited[strings.Index(handEdited, "\n# CI token"):],
		},
		{
			name:   "replace last",
			file:   handEdited,
			prof:   "ci",
			cfg:    &providers.ProfileConfig{Provider: "externaljwt", File: "/run/token", Lifetime: providers.Duration(time.Hour)},
			before: handEdited[:strings.Index(handEdited, "[profile.ci]")] + "[profile.ci]\n",
		},
		{
			name:   "replace split profile",
			file:   "[profile.a]\nprovider = \"apikey\"\n\n[profile.b]\nprovider = \"apikey\"\n\n# a's headers\n[profile.a.headers]\nX = \"y\"\n\n[profile.c]\nprovider = \"apikey\"\n",
			prof:   "a",
			cfg:    newCfg,
			before: "[profile.a]\n",
			after:  "\n\n[profile.b]\nprovider = \"apikey\"\n\n[profile.c]\nprovider = \"apikey\"\n",
		},
		{
			name:   "create",
			prof:   "new",
			cfg:    newCfg,
			before: "[profile.new]\n",
		},
		{
			name:   "dotted name",
			file:   "[profile.a]\nprovider = \"apikey\"\n",
			prof:   "a.b",
			cfg:    newCfg,
			before: "[profile.a]\nprovider = \"apikey\"\n\n[profile.\"a.b\"]\n",
		},
		{
			name:   "crlf",
			file:   "# c\r\n[profile.a]\r\nprovider = \"apikey\"\r\n\r\n[profile.b]\r\nprovider = \"apikey\"\r\n",
			prof:   "a",
			cfg:    newCfg,
			before: "# c\r\n[profile.a]\r\nprovider = 'apikey'\r\n",
			after:  "\r\n\r\n[profile.b]\r\nprovider = \"apikey\"\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if tt.file != "" {
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var wantProfiles map[string]*providers.ProfileConfig
			if tt.file != "" {
				old, err := ParseConfig(path, []byte(tt.file))
				if err != nil {
					t.Fatal(err)
				}
				wantProfiles = old.Profiles
			} else {
				wantProfiles = map[string]*providers.ProfileConfig{}
			}
			wantProfiles[tt.prof] = tt.cfg

			if err := WriteProfile(path, tt.prof, tt.cfg); err != nil {
				t.Fatal(err)
			}
			got := readConfigFile(t, path)
			if !strings.HasPrefix(got, tt.before) {
				t.Errorf("file does not start with the kept part\n--- got:\n%s\n--- want prefix:\n%s", got, tt.before)
			}
			if !strings.HasSuffix(got, tt.after) {
				t.Errorf("file does not end with the kept part\n--- got:\n%s\n--- want suffix:\n%s", got, tt.after)
			}
			cfg, err := LoadConfig(path)
			if err != nil {
				t.Fatalf("edited file does not load: %v\n%s", err, got)
			}
			if diff := cmp.Diff(wantProfiles, cfg.Profiles, profileCmp); diff != "" {
				t.Errorf("profiles (-want +got):\n%s\nfile:\n%s", diff, got)
			}
		})
	}
}

func TestConfigWriteProfileRoundTrip(t *testing.T) {
	want := &providers.ProfileConfig{
		Provider:      "externaljwt",
		Hosts:         []string{"*.example.com", "localhost:8443"},
		Username:      "x-token",
		RefreshBefore: providers.Duration(90 * time.Second),
		MinValid:      providers.Duration(1500 * time.Millisecond),
		Scopes:        []string{"a b", "c'd", `e"f`},
		Headers:       map[string]string{"Authorization": "Bearer {token}", "a.b": "c", "": "empty key", "ü": "\n\t"},
		Metadata:      map[string]string{"x-token": "{token}"},
		Command:       []string{"sh", "-c", "echo '[profile.x]'\n"},
		Env:           map[string]string{"PATH": "/bin:/usr/bin", "HOME": `C:\Users\me`},
		Timeout:       providers.Duration(2*time.Hour + 3*time.Minute),
		Lifetime:      providers.Duration(5 * time.Minute),
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	for i := range 2 { // the second write replaces the first
		if err := WriteProfile(path, "rt", want); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		cfg, err := LoadConfig(path)
		if err != nil {
			t.Fatalf("load %d: %v\n%s", i, err, readConfigFile(t, path))
		}
		if diff := cmp.Diff(map[string]*providers.ProfileConfig{"rt": want}, cfg.Profiles, profileCmp); diff != "" {
			t.Errorf("round trip %d (-want +got):\n%s\nfile:\n%s", i, diff, readConfigFile(t, path))
		}
	}
}

func TestConfigWriteProfileRefuses(t *testing.T) {
	good := &providers.ProfileConfig{Provider: "apikey"}
	tests := []struct {
		name string
		file string
		prof string
		cfg  *providers.ProfileConfig
	}{
		{"no provider", "[profile.a]\nprovider = \"apikey\"\n", "b", &providers.ProfileConfig{}},
		{"bad name", "", "-x", good},
		{"nil config", "", "x", nil},
		{"file does not parse", "[profile.a\n", "b", good},
		{"another profile is broken", "[profile.a]\nprovider = \"apikey\"\nfoo = 1\n", "b", good},
		{"dotted keys", "profile.a.provider = \"apikey\"\n", "a", good},
		{"dotted keys in profile table", "[profile]\na.provider = \"apikey\"\n", "a", good},
		{"inline table", "[profile]\na = { provider = \"apikey\" }\n", "a", good},
		{"dotted key outside its table", "[profile.a]\nprovider = \"apikey\"\n[profile]\na.mode = \"x\"\n", "a", good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.toml")
			if tt.file != "" {
				if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteProfile(path, tt.prof, tt.cfg); err == nil {
				t.Fatalf("WriteProfile succeeded, want an error; file:\n%s", readConfigFile(t, path))
			}
			if tt.file == "" {
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("file was created: %v", err)
				}
			} else if got := readConfigFile(t, path); got != tt.file {
				t.Errorf("file changed to:\n%s", got)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) > 1 || len(entries) == 1 && tt.file == "" {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

func TestConfigWriteProfileModes(t *testing.T) {
	cfg := &providers.ProfileConfig{Provider: "apikey"}
	t.Run("create", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "authagent")
		path := filepath.Join(dir, "config.toml")
		if err := WriteProfile(path, "a", cfg); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("mode of %s = %v, want %v", p, got, want)
			}
		}
	})
	t.Run("keep", func(t *testing.T) {
		path := writeConfigFile(t, "")
		if err := os.Chmod(path, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := WriteProfile(path, "a", cfg); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o640 {
			t.Errorf("mode = %v, want 0640", got)
		}
	})
	t.Run("symlink", func(t *testing.T) {
		real := writeConfigFile(t, "# real\n")
		link := filepath.Join(t.TempDir(), "config.toml")
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		if err := WriteProfile(link, "a", cfg); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("link replaced: %v, %v", fi, err)
		}
		if got := readConfigFile(t, real); !strings.HasPrefix(got, "# real\n\n[profile.a]\n") {
			t.Errorf("target = %q", got)
		}
	})
}

func TestConfigRemoveProfile(t *testing.T) {
	const three = `# Header comment.

secret_store = "memory"

# About a.
[profile.a]
provider = "apikey"

[profile.a.headers]
X = "y"

# About b,
# two lines.
[profile.b]   # trailing
provider = "apikey"
command = ["x", """
[profile.c]
"""]
# b's last comment

# About c.
[profile.c]
provider = "apikey"
`
	tests := []struct {
		name string
		file string
		prof string
		want string
	}{
		{
			"first with sub-table", three, "a",
			`# Header comment.

secret_store = "memory"

# About b,
# two lines.
[profile.b]   # trailing
provider = "apikey"
command = ["x", """
[profile.c]
"""]
# b's last comment

# About c.
[profile.c]
provider = "apikey"
`,
		},
		{
			"middle", three, "b",
			`# Header comment.

secret_store = "memory"

# About a.
[profile.a]
provider = "apikey"

[profile.a.headers]
X = "y"

# About c.
[profile.c]
provider = "apikey"
`,
		},
		{
			"last", three, "c",
			`# Header comment.

secret_store = "memory"

# About a.
[profile.a]
provider = "apikey"

[profile.a.headers]
X = "y"

# About b,
# two lines.
[profile.b]   # trailing
provider = "apikey"
command = ["x", """
[profile.c]
"""]
# b's last comment
`,
		},
		{
			"only", "[profile.a]\nprovider = \"apikey\"\n", "a", "",
		},
		{
			"split", "[profile.a]\nprovider = \"apikey\"\n\n[profile.b]\nprovider = \"apikey\"\n\n[profile.a.headers]\nX = \"y\"\n\n\n", "a",
			"[profile.b]\nprovider = \"apikey\"\n",
		},
		{
			"quoted", "[profile.b]\nprovider = \"apikey\"\n\n[profile.\"a.b\"]\nprovider = \"apikey\"\n", "a.b",
			"[profile.b]\nprovider = \"apikey\"\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfigFile(t, tt.file)
			before, err := ParseConfig(path, []byte(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if err := RemoveProfile(path, tt.prof); err != nil {
				t.Fatal(err)
			}
			got := readConfigFile(t, path)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("file (-want +got):\n%s", diff)
			}
			after, err := LoadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			delete(before.Profiles, tt.prof)
			if diff := cmp.Diff(before.Profiles, after.Profiles, profileCmp); diff != "" {
				t.Errorf("profiles (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigRemoveProfileErrors(t *testing.T) {
	t.Run("no such profile", func(t *testing.T) {
		const file = "[profile.a]\nprovider = \"apikey\"\n"
		path := writeConfigFile(t, file)
		if err := RemoveProfile(path, "b"); !errors.Is(err, ErrNoSuchProfile) {
			t.Errorf("RemoveProfile = %v, want %v", err, ErrNoSuchProfile)
		}
		if got := readConfigFile(t, path); got != file {
			t.Errorf("file changed to %q", got)
		}
	})
	t.Run("no file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config.toml")
		if err := RemoveProfile(path, "b"); !errors.Is(err, ErrNoSuchProfile) {
			t.Errorf("RemoveProfile = %v, want %v", err, ErrNoSuchProfile)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("file was created: %v", err)
		}
	})
	t.Run("dotted keys", func(t *testing.T) {
		const file = "profile.a.provider = \"apikey\"\n"
		path := writeConfigFile(t, file)
		err := RemoveProfile(path, "a")
		if err == nil || errors.Is(err, ErrNoSuchProfile) {
			t.Errorf("RemoveProfile = %v, want an error saying to edit by hand", err)
		}
		if got := readConfigFile(t, path); got != file {
			t.Errorf("file changed to %q", got)
		}
	})
}
