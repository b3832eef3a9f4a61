package agent

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/authagent/authagent/providers"
)

var configSeeds = []string{
	"",
	"secret_store = \"memory\"\n",
	"# mine\nsecret_store = \"keyring\"   # here\n\n[profile.hub]\nprovider = \"apikey\"\nhosts = [\"api.example.com\"]\nheaders = { \"X-K\" = \"{secret}\" }\n",
	"[profile.work]\nprovider = \"devicecode\"\nissuer = \"https://login.example.com\"\nclient_id = \"cli\"\n\n[profile.work.headers]\nA = \"b\"\n\n[profile.other]\nprovider = \"apikey\"\n",
	"[profile.\"we ird\"]\nprovider = 'apikey'\r\n[profile.x]\r\nprovider = \"apikey\"\r\n",
	"[profile]\nhub = { provider = \"apikey\" }\n",
	"[[profile.a]]\n",
	"[profile.a]\nprovider = \"\"\"\nmulti\n\"\"\"\n",
	"bogus = 1\n",
}

// FuzzParseConfig: no config file makes the loader panic, and one it accepts has valid
// profile names and line numbers for what it reports.
func FuzzParseConfig(f *testing.F) {
	for _, s := range configSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("config.toml", data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) && err.Error() == "" {
				t.Fatalf("an error without words: %#v", err)
			}
			return
		}
		for name := range cfg.Profiles {
			if cfg.Profiles[name] == nil {
				t.Fatalf("profile %q is nil", name)
			}
		}
	})
}

// FuzzEditConfig: adding, replacing or removing a profile in any file the loader accepts
// gives a file the loader accepts, with that one profile changed and every other profile
// and setting as it was: an edit never produces invalid TOML, nor a table nobody asked for.
func FuzzEditConfig(f *testing.F) {
	for _, s := range configSeeds {
		f.Add([]byte(s), "hub", "api.example.com", false)
		f.Add([]byte(s), "new-one", "*.corp.example", true)
	}
	f.Fuzz(func(t *testing.T, data []byte, name, host string, remove bool) {
		before, err := ParseConfig("config.toml", data)
		if err != nil || !validProfileName(name) {
			return
		}
		path := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		want := map[string]*providers.ProfileConfig{}
		for k, v := range before.Profiles {
			want[k] = v
		}
		if remove {
			err = RemoveProfile(path, name)
			if _, had := before.Profiles[name]; !had {
				if !errors.Is(err, ErrNoSuchProfile) && err != nil {
					return // a file the editor will not touch is refused, not broken
				}
			}
			delete(want, name)
		} else {
			pc := &providers.ProfileConfig{Provider: "apikey", Hosts: []string{host}, Headers: map[string]string{"X-K": "{secret}"}}
			err = WriteProfile(path, name, pc)
			want[name] = pc
		}
		if err != nil {
			if errors.Is(err, ErrNoSuchProfile) {
				return
			}
			// Refusing is fine; what matters is the file is unchanged then.
			got, rerr := os.ReadFile(path)
			if rerr != nil || string(got) != string(data) {
				t.Fatalf("a refused edit (%v) changed the file:\n%q\nto\n%q", err, data, got)
			}
			return
		}
		out, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		after, err := ParseConfig("config.toml", out)
		if err != nil {
			t.Fatalf("the edit made a file the loader refuses: %v\nbefore:\n%s\nafter:\n%s", err, data, out)
		}
		if after.SecretStore != before.SecretStore {
			t.Fatalf("secret_store changed from %q to %q:\n%s", before.SecretStore, after.SecretStore, out)
		}
		if len(after.Profiles) != len(want) {
			t.Fatalf("profiles %v after the edit, want %v:\nbefore:\n%s\nafter:\n%s", keys(after.Profiles), keys(want), data, out)
		}
		for k, v := range want {
			if !reflect.DeepEqual(after.Profiles[k], v) {
				t.Fatalf("profile %q is %+v after the edit, want %+v:\nbefore:\n%s\nafter:\n%s", k, after.Profiles[k], v, data, out)
			}
		}
	})
}

func keys(m map[string]*providers.ProfileConfig) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
