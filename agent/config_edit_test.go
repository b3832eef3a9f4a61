package agent

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/authagent/authagent/providers"
)

// editStarts are files the edit tests start from: hand-written ones with comments,
// sub-tables, quoted headers, tables of one profile apart, multi-line strings that look
// like headers, CRLF, no final newline, and strays (dotted keys) the editor refuses.
var editStarts = []string{
	"",
	"secret_store = \"memory\"\n",
	handEdited,
	strings.TrimSuffix(handEdited, "\n"),
	strings.ReplaceAll(handEdited, "\n", "\r\n"),
	"# c\r\n[profile.a]\r\nprovider = \"apikey\"\r\n\r\n[profile.b]\r\nprovider = \"apikey\"\r\n",
	"[profile.a]\nprovider = \"apikey\"\n\n[profile.b]\nprovider = \"apikey\"\n\n# a's headers\n[profile.a.headers]\nX = \"y\"\n\n[profile.c]\nprovider = \"apikey\"\n",
	"[profile.a]\nprovider = \"apikey\"\n[profile]\nb.provider = \"apikey\"\n",
	"# only a comment",
	"[profile.a]\nprovider = \"apikey\"\r\n\n\n\n# trailing\n\n",
}

// readIfAny is the file's content, "" when there is none.
func readIfAny(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// checkText fails unless t is what a fresh scan of its text finds.
func checkText(t *testing.T, what string, got *configText) {
	t.Helper()
	doc, err := scanConfig([]byte(got.text.String()))
	if err != nil {
		t.Fatalf("%s: the kept text does not scan: %v\n%s", what, err, got.text.String())
	}
	want := newConfigText([]byte(got.text.String()), doc)
	if got.text.size != len(got.text.String()) {
		t.Fatalf("%s: the kept text's size is %d, its pieces hold %d bytes", what, got.text.size, len(got.text.String()))
	}
	opts := []cmp.Option{cmp.AllowUnexported(configText{}, textHeader{}, textKey{}), cmpopts.IgnoreFields(configText{}, "text"), cmpopts.EquateEmpty()}
	if diff := cmp.Diff(want, got, opts...); diff != "" {
		t.Fatalf("%s: the kept text differs from a fresh scan (-fresh +kept):\n%s\ntext:\n%s", what, diff, got.text.String())
	}
}

// TestConfigEditKnownTextMatchesFresh runs random sequences of PUTs and DELETEs, and now
// and then an edit by hand, two ways: on a file read and parsed afresh each time
// (WriteProfile, RemoveProfile: what every edit did before), and on the text kept from
// the last edit (what the agent does). The files, and which edits are refused, must be
// the same; the kept text must be what a fresh scan finds; and the kept text must really
// be used.
func TestConfigEditKnownTextMatchesFresh(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	names := []string{"a", "b", "c", "hub", "work", "ci", "new-one", "x.y"}
	randomConfig := func() *providers.ProfileConfig {
		pc := &providers.ProfileConfig{Provider: "apikey", KeyID: fmt.Sprintf("k%d", r.IntN(100))}
		for range r.IntN(3) {
			pc.Hosts = append(pc.Hosts, fmt.Sprintf("h%d.example.com", r.IntN(10)))
		}
		if r.IntN(2) == 0 {
			pc.Headers = map[string]string{"X-Key": "{secret}", "X.Dotted": `it's "quoted"`}
		}
		if r.IntN(4) == 0 {
			pc.Command = []string{"sh", "-c", "echo '[profile.x]'\n"}
		}
		return pc
	}
	handEdits := []func(string) string{
		func(s string) string { return s + "\n# added by hand\n" },
		func(s string) string { return "# at the top\n" + s },
		func(s string) string { return s + "\n[profile.broken]\nprovider = \"apikey\"\nbogus = 1\n" }, // refuses every edit
		func(s string) string { return strings.Replace(s, "bogus = 1\n", "", 1) },                     // and mends it
	}
	usedKnown := 0
	for i, start := range editStarts {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			dir := t.TempDir()
			fresh, kept := filepath.Join(dir, "fresh.toml"), filepath.Join(dir, "kept.toml")
			var known *configText
			if start != "" {
				for _, p := range []string{fresh, kept} {
					if err := os.WriteFile(p, []byte(start), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				if cfg, err := ParseConfig(kept, []byte(start)); err == nil {
					known = cfg.text
				}
			}
			for step := range 60 {
				if r.IntN(10) == 0 {
					edit := handEdits[r.IntN(len(handEdits))]
					b := edit(readIfAny(t, fresh))
					for _, p := range []string{fresh, kept} {
						if err := os.WriteFile(p, []byte(b), 0o600); err != nil {
							t.Fatal(err)
						}
					}
					continue
				}
				name := names[r.IntN(len(names))]
				before := readIfAny(t, fresh)
				var what string
				var errFresh, errKept error
				var next *configText
				if r.IntN(3) == 0 {
					what = "remove " + name
					errFresh = RemoveProfile(fresh, name)
					next, errKept = removeProfile(kept, name, known)
				} else {
					pc := randomConfig()
					what = fmt.Sprintf("put %s %+v", name, pc)
					errFresh = WriteProfile(fresh, name, pc)
					next, errKept = writeProfile(kept, name, pc, known)
				}
				what = fmt.Sprintf("step %d: %s", step, what)
				if (errFresh == nil) != (errKept == nil) || errors.Is(errFresh, ErrNoSuchProfile) != errors.Is(errKept, ErrNoSuchProfile) {
					t.Fatalf("%s: afresh: %v; with the kept text: %v\nfile before:\n%s", what, errFresh, errKept, before)
				}
				if got, want := readIfAny(t, kept), readIfAny(t, fresh); got != want {
					t.Fatalf("%s: the files differ\n--- with the kept text:\n%s\n--- afresh:\n%s\n--- before:\n%s", what, got, want, before)
				}
				if errFresh != nil && readIfAny(t, fresh) != before {
					t.Fatalf("%s: refused (%v), but the file changed", what, errFresh)
				}
				if next != nil && known != nil && next == known && errKept == nil {
					usedKnown++
				}
				known = next
				if known != nil {
					if known.text.String() != readIfAny(t, kept) {
						t.Fatalf("%s: the kept text is not the file", what)
					}
					checkText(t, what, known)
					if _, err := ParseConfig(kept, []byte(known.text.String())); err != nil {
						t.Fatalf("%s: the kept text is said to load, but: %v", what, err)
					}
				}
			}
		})
	}
	if usedKnown < 100 {
		t.Errorf("only %d edits used the kept text; the test does not test it", usedKnown)
	}
}

// TestConfigEditNoticesHandEdits: a file changed behind the agent's back is read afresh,
// so the hand edit is kept, and an edit the changed file would not load after is refused
// as before.
func TestConfigEditNoticesHandEdits(t *testing.T) {
	path := writeConfigFile(t, "[profile.a]\nprovider = \"apikey\"\n")
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	known := cfg.text
	if known, err = writeProfile(path, "b", &providers.ProfileConfig{Provider: "apikey"}, known); err != nil {
		t.Fatal(err)
	}
	const hand = "# mine\n[profile.c]\nprovider = \"apikey\"\nscopess = [\"x\"]\n"
	if err := os.WriteFile(path, []byte(readIfAny(t, path)+hand), 0o600); err != nil {
		t.Fatal(err)
	}
	next, err := writeProfile(path, "d", &providers.ProfileConfig{Provider: "apikey"}, known)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "profile.c.scopess" || next != nil {
		t.Fatalf("edit of a file with a bad key added by hand: %v (text kept: %v), want a ConfigError naming profile.c.scopess", err, next != nil)
	}
	fixed := strings.Replace(readIfAny(t, path), "scopess", "scopes", 1)
	if err := os.WriteFile(path, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := writeProfile(path, "d", &providers.ProfileConfig{Provider: "apikey"}, known); err != nil {
		t.Fatal(err)
	}
	if got := readIfAny(t, path); !strings.HasPrefix(got, fixed) || !strings.Contains(got, "[profile.d]") {
		t.Errorf("the hand edit was not kept, or d not added:\n%s", got)
	}
}

// FuzzEditConfigKnownText: on any file the loader accepts, two edits in a row made on the
// text kept from the load and from the first edit give the same file as the same edits
// made afresh, and the kept text is what a fresh scan of the file finds.
func FuzzEditConfigKnownText(f *testing.F) {
	for _, s := range append(slices.Clone(configSeeds), editStarts...) {
		f.Add([]byte(s), "hub", "b", false)
		f.Add([]byte(s), "a", "new-one", true)
	}
	f.Fuzz(func(t *testing.T, data []byte, name, name2 string, remove bool) {
		cfg, err := ParseConfig("config.toml", data)
		if err != nil || !validProfileName(name) || !validProfileName(name2) {
			return
		}
		dir := t.TempDir()
		fresh, kept := filepath.Join(dir, "fresh.toml"), filepath.Join(dir, "kept.toml")
		for _, p := range []string{fresh, kept} {
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		known := cfg.text
		pc := &providers.ProfileConfig{Provider: "apikey", Hosts: []string{"api.example.com"}, Headers: map[string]string{"X-K": "{secret}"}}
		for step, op := range []struct {
			name   string
			remove bool
		}{{name, remove}, {name2, false}} {
			var errFresh, errKept error
			if op.remove {
				errFresh = RemoveProfile(fresh, op.name)
				known, errKept = removeProfile(kept, op.name, known)
			} else {
				errFresh = WriteProfile(fresh, op.name, pc)
				known, errKept = writeProfile(kept, op.name, pc, known)
			}
			if (errFresh == nil) != (errKept == nil) {
				t.Fatalf("step %d: afresh: %v; with the kept text: %v\n%q", step, errFresh, errKept, data)
			}
			if got, want := readIfAny(t, kept), readIfAny(t, fresh); got != want {
				t.Fatalf("step %d: the files differ\nkept:  %q\nfresh: %q\nfrom:  %q", step, got, want, data)
			}
			if known == nil {
				return
			}
			if known.text.String() != readIfAny(t, kept) {
				t.Fatalf("step %d: the kept text is not the file", step)
			}
			checkText(t, fmt.Sprintf("step %d", step), known)
		}
	})
}
