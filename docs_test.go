package authagent_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/ipc/server"
	"github.com/authagent/authagent/providers"
	"github.com/authagent/authagent/providers/apikey"
	"github.com/authagent/authagent/providers/devicecode"
	"github.com/authagent/authagent/providers/externaljwt"
)

// The tests in this file keep docs/ true to the code. Each list they check the docs
// against is read from the code (struct tags, the route table, constants, what the
// provider factories accept), never written out here, so a key, route, field or error
// code added without docs fails them.

// ---- Markdown, as far as these tests read it ----

// mdSection is a heading and the lines up to the next heading.
type mdSection struct {
	heading string // without the leading #s
	level   int
	lines   []string
}

// mdTable is a table: its header cells and its rows' cells, without the separator row.
type mdTable struct {
	header []string
	rows   [][]string
}

// mdBlock is a fenced code block.
type mdBlock struct {
	lang string
	text string
}

// readDoc splits a Markdown file into sections. Lines before the first heading form a
// section without heading; headings inside code blocks do not count.
func readDoc(t *testing.T, path string) []mdSection {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	secs := []mdSection{{}}
	fenced := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if !fenced && strings.HasPrefix(line, "#") {
			h := strings.TrimLeft(line, "#")
			secs = append(secs, mdSection{heading: strings.TrimSpace(h), level: len(line) - len(h)})
			continue
		}
		secs[len(secs)-1].lines = append(secs[len(secs)-1].lines, line)
	}
	return secs
}

func (s mdSection) text() string { return strings.Join(s.lines, "\n") }

// tables returns the section's tables.
func (s mdSection) tables() []mdTable {
	var out []mdTable
	var cur *mdTable
	for _, line := range s.lines {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			cur = nil
			continue
		}
		cells := splitRow(line)
		switch {
		case cur == nil:
			out = append(out, mdTable{header: cells})
			cur = &out[len(out)-1]
		case strings.Trim(line, "|-: ") == "":
			// the separator row
		default:
			cur.rows = append(cur.rows, cells)
		}
	}
	return out
}

// splitRow splits a table row into trimmed cells; `\|` does not split.
func splitRow(line string) []string {
	line = strings.ReplaceAll(line, `\|`, "\x00")
	parts := strings.Split(strings.Trim(line, "|"), "|")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(strings.ReplaceAll(p, "\x00", "|"))
	}
	return parts
}

// column returns the first cell of every row of the section's tables whose first header
// cell is header, with the backticks around it removed.
func (s mdSection) column(header string) []string {
	var out []string
	for _, tb := range s.tables() {
		if len(tb.header) == 0 || !strings.EqualFold(tb.header[0], header) {
			continue
		}
		for _, r := range tb.rows {
			out = append(out, strings.Trim(r[0], "`"))
		}
	}
	return out
}

// blocks returns the section's fenced code blocks.
func (s mdSection) blocks() []mdBlock {
	var out []mdBlock
	var cur *mdBlock
	for _, line := range s.lines {
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			out = append(out, mdBlock{lang: strings.TrimSpace(strings.TrimPrefix(line, "```"))})
			cur = &out[len(out)-1]
		case cur != nil && strings.HasPrefix(line, "```"):
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	return out
}

// ---- Reading the code ----

func parseGo(t *testing.T, path string) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// structTags returns, for each struct type declared in the file, the names its fields
// have under the tag key (e.g. "json"), in order. Fields tagged "-" are left out; an
// embedded field without that tag is reported as "…" + its type's name.
func structTags(t *testing.T, path, key string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	ast.Inspect(parseGo(t, path), func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return true
		}
		names := []string{}
		for _, f := range st.Fields.List {
			name := ""
			if f.Tag != nil {
				tag, err := strconv.Unquote(f.Tag.Value)
				if err != nil {
					t.Fatal(err)
				}
				name, _, _ = strings.Cut(reflect.StructTag(tag).Get(key), ",")
			}
			switch {
			case name == "-":
			case name != "":
				names = append(names, name)
			case len(f.Names) == 0: // embedded
				names = append(names, "…"+typeName(f.Type))
			}
		}
		out[ts.Name.Name] = names
		return true
	})
	return out
}

// typeName names a type expression: "providers.ProfileConfig", "Profile".
func typeName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return typeName(x.X) + "." + x.Sel.Name
	case *ast.StarExpr:
		return typeName(x.X)
	}
	return fmt.Sprintf("%T", e)
}

// tomlKeys are the keys of a profile table: the toml names of providers.ProfileConfig.
func tomlKeys() []string {
	var keys []string
	rt := reflect.TypeFor[providers.ProfileConfig]()
	for i := range rt.NumField() {
		if name, _, _ := strings.Cut(rt.Field(i).Tag.Get("toml"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// topLevelKeys are the keys of the config file's top level: the toml names of the
// loader's configFile struct in agent/config.go.
func topLevelKeys(t *testing.T) []string {
	t.Helper()
	keys, ok := structTags(t, "agent/config.go", "toml")["configFile"]
	if !ok || len(keys) == 0 {
		t.Fatal("agent/config.go has no configFile struct with toml tags; this test reads the top-level keys from it")
	}
	return keys
}

// kindFactories are the provider kinds and their factories, checked against the ones the
// agent is built with (cmd/authagent/serve.go) by TestConfigDocKinds.
var kindFactories = map[string]struct {
	name    string
	factory providers.Factory
}{
	"apikey":     {apikey.Name, apikey.New},
	"devicecode": {devicecode.Name, devicecode.New},
	// The same package under its second kind name (serve.go: devicecode.OIDCName).
	"devicecode.OIDCName": {devicecode.OIDCName, devicecode.New},
	"externaljwt":         {externaljwt.Name, externaljwt.New},
}

func factoryFor(kind string) providers.Factory {
	for _, k := range kindFactories {
		if k.name == kind {
			return k.factory
		}
	}
	return nil
}

// ---- docs/config.md ----

const configDoc = "docs/config.md"

// The sections of docs/config.md the tests find by heading.
const (
	topLevelSection = "Top-level keys"
	commonSection   = "Common keys"
)

// modeSection is a section of config.md that documents one kind (and mode): its key
// table, and its example, which defines exactly one profile.
type modeSection struct {
	heading string
	keys    []string
	example *providers.ProfileConfig
}

// configDocSections reads config.md: every key table by section, and the mode sections.
// Every TOML example must load (agent.ParseConfig) and every profile in it must be one its
// provider's factory accepts.
func configDocSections(t *testing.T) (tables map[string][]string, modes []modeSection) {
	t.Helper()
	tables = map[string][]string{}
	for _, s := range readDoc(t, configDoc) {
		keys := s.column("key")
		if len(keys) > 0 {
			tables[s.heading] = keys
		}
		var examples []*agent.Config
		for _, b := range s.blocks() {
			if b.lang != "toml" {
				continue
			}
			cfg, err := agent.ParseConfig(configDoc+" ("+s.heading+")", []byte(b.text))
			if err != nil {
				t.Errorf("%s, section %q: the example does not load: %v", configDoc, s.heading, err)
				continue
			}
			for name, pc := range cfg.Profiles {
				f := factoryFor(pc.Provider)
				if f == nil {
					t.Errorf("%s, section %q: profile %s: unknown provider %q", configDoc, s.heading, name, pc.Provider)
					continue
				}
				if _, err := f(pc, providers.Env{Name: name}); err != nil {
					t.Errorf("%s, section %q: profile %s is refused by its provider: %v", configDoc, s.heading, name, err)
				}
			}
			examples = append(examples, cfg)
		}
		if len(keys) == 0 || s.heading == topLevelSection || s.heading == commonSection {
			continue
		}
		if len(examples) != 1 || len(examples[0].Profiles) != 1 {
			t.Errorf("%s, section %q: a section with a key table documents one kind or mode and needs exactly one TOML example with one profile", configDoc, s.heading)
			continue
		}
		for _, pc := range examples[0].Profiles {
			modes = append(modes, modeSection{heading: s.heading, keys: keys, example: pc})
		}
	}
	return tables, modes
}

// TestConfigDocKeys: every key the loader takes (the profile keys of
// providers.ProfileConfig and the top-level keys of agent's configFile) is in a key table
// of config.md, and every key in those tables is one the loader takes.
func TestConfigDocKeys(t *testing.T) {
	tables, _ := configDocSections(t)
	top := topLevelKeys(t)
	loader := append(slices.Clone(top), tomlKeys()...)
	documented := map[string]bool{}
	for heading, keys := range tables {
		for _, k := range keys {
			documented[k] = true
			if !slices.Contains(loader, k) {
				t.Errorf("%s, section %q: key %q is not one the config loader takes; remove it or fix its name", configDoc, heading, k)
			}
		}
	}
	for _, k := range loader {
		if !documented[k] {
			t.Errorf("config key %q is not documented in a key table of %s", k, configDoc)
		}
	}
	if got := tables[topLevelSection]; !sameSet(got, top) {
		t.Errorf("%s, section %q lists %q; the top-level keys are %q", configDoc, topLevelSection, got, top)
	}
}

// A key whose outcome is refused is one the factory will not take in that profile; the
// messages are those of providers.CheckKeys and the factories' exclusion rules.
var refusals = []string{"not used by provider", "used only with", "not both"}

// dummies are values to try for a key, by the Go type of its ProfileConfig field: a
// factory that refuses the first for its form gets the next.
func dummies(rt reflect.Type) []reflect.Value {
	var out []any
	switch {
	case rt == reflect.TypeFor[providers.Duration]():
		out = []any{providers.Duration(90 * time.Second)}
	case rt.Kind() == reflect.String:
		out = []any{"https://example.org/x", "/tmp/x", "x"}
	case rt.Kind() == reflect.Slice && rt.Elem().Kind() == reflect.String:
		out = []any{[]string{"x"}}
	case rt.Kind() == reflect.Slice && rt.Elem().Kind() == reflect.Int:
		out = []any{[]int{8000}}
	case rt.Kind() == reflect.Map && rt.Elem().Kind() == reflect.String:
		out = []any{map[string]string{"X-Dummy": "x"}}
	}
	vals := make([]reflect.Value, len(out))
	for i, v := range out {
		vals[i] = reflect.ValueOf(v).Convert(rt)
	}
	return vals
}

// field returns the ProfileConfig field of a toml key.
func field(cfg *providers.ProfileConfig, key string) reflect.Value {
	v := reflect.ValueOf(cfg).Elem()
	for i := range v.NumField() {
		if name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ","); name == key {
			return v.Field(i)
		}
	}
	panic("no ProfileConfig field for key " + key)
}

// outcome builds cfg with key set to val and classifies what the factory says about key:
// "ok", "refused" (the key is not taken in this profile), "value" (only this value is
// wrong), or "conflict:K" (the value clashes with key K).
func outcome(t *testing.T, f providers.Factory, base providers.ProfileConfig, key string, val reflect.Value) string {
	cfg := base
	field(&cfg, key).Set(val)
	_, err := f(&cfg, providers.Env{Name: "doc"})
	if err == nil {
		return "ok"
	}
	var ce *providers.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("factory for %s with %s set: %v; want nil or a *providers.ConfigError", base.Provider, key, err)
	}
	if ce.Key != key && !strings.HasPrefix(ce.Key, key+".") {
		return "conflict:" + ce.Key
	}
	for _, r := range refusals {
		if strings.Contains(ce.Message, r) {
			return "refused"
		}
	}
	return "value"
}

// signature is what the factory says about setting each key that base leaves unset: a
// profile's kind and mode in terms of the keys it refuses.
func signature(t *testing.T, f providers.Factory, base providers.ProfileConfig) map[string]string {
	sig := map[string]string{}
	for _, k := range tomlKeys() {
		if !field(&base, k).IsZero() {
			continue
		}
		sig[k] = outcome(t, f, base, k, dummies(field(&base, k).Type())[0])
	}
	return sig
}

// accepted returns the keys a profile like base may set without becoming another mode:
// keys set in base, and keys that the factory takes (with some value) while refusing the
// same other keys as it does for base. So in an externaljwt profile with pushed tokens,
// lifetime is accepted, while command is not: setting it makes a command profile, which
// takes env, dir and timeout that the pushed profile refuses.
func accepted(t *testing.T, f providers.Factory, base providers.ProfileConfig) []string {
	baseSig := signature(t, f, base)
	var out []string
	for _, k := range tomlKeys() {
		fv := field(&base, k)
		if !fv.IsZero() {
			out = append(out, k)
			continue
		}
		ok := true // a key whose every value is refused for its form is still taken
	values:
		for _, val := range dummies(fv.Type()) {
			switch o := outcome(t, f, base, k, val); o {
			case "value":
				continue
			case "ok":
				cfg := base
				field(&cfg, k).Set(val)
				want := maps.Clone(baseSig)
				delete(want, k)
				ok = maps.Equal(signature(t, f, cfg), want)
				break values
			default:
				ok = false
				break values
			}
		}
		if ok {
			out = append(out, k)
		}
	}
	return out
}

// TestConfigDocModes: for each kind and mode section of config.md, its key table lists
// exactly the keys its provider's factory accepts in a profile like the section's
// example, less the common keys; the common keys section lists exactly the keys every one
// of them accepts; every apikey mode has a section; and every key a kind takes at all is
// in one of its sections.
func TestConfigDocModes(t *testing.T) {
	tables, modes := configDocSections(t)
	if len(modes) == 0 {
		t.Fatalf("%s documents no kind or mode", configDoc)
	}
	acc := make([][]string, len(modes))
	var common []string
	for i, m := range modes {
		f := factoryFor(m.example.Provider)
		acc[i] = accepted(t, f, *m.example)
		if i == 0 {
			common = acc[i]
		} else {
			common = slices.DeleteFunc(slices.Clone(common), func(k string) bool { return !slices.Contains(acc[i], k) })
		}
	}
	if got := tables[commonSection]; !sameSet(got, common) {
		t.Errorf("%s, section %q lists %q; every kind and mode takes %q", configDoc, commonSection, got, common)
	}
	kindTables := map[string][]string{}
	for i, m := range modes {
		want := slices.DeleteFunc(slices.Clone(acc[i]), func(k string) bool { return slices.Contains(common, k) })
		if !sameSet(m.keys, want) {
			t.Errorf("%s, section %q lists %q; the %s provider takes %q in a profile like the section's example (besides the common keys): missing %q, not taken %q",
				configDoc, m.heading, m.keys, m.example.Provider, want, minus(want, m.keys), minus(m.keys, want))
		}
		kindTables[m.example.Provider] = append(kindTables[m.example.Provider], m.keys...)
	}
	// Every key a kind takes in some profile is documented in one of its sections: a key
	// that makes a mode of its own (file, command) needs a section for that mode.
	for pkg, k := range kindFactories {
		if _, ok := kindTables[k.name]; !ok {
			t.Errorf("%s has no section for provider %s (package %s)", configDoc, k.name, pkg)
		}
		taken := map[string]bool{}
		for _, m := range modes {
			if m.example.Provider != k.name {
				continue
			}
			for key, o := range signature(t, k.factory, *m.example) {
				if o != "refused" || !strings.Contains(outcomeMessage(k.factory, *m.example, key), "not used by provider") {
					taken[key] = true
				}
			}
		}
		for key := range taken {
			if !slices.Contains(common, key) && !slices.Contains(kindTables[k.name], key) {
				t.Errorf("%s: provider %s takes key %q, but no section of it lists the key; add a section for the mode it selects", configDoc, k.name, key)
			}
		}
	}
	// Every apikey mode, as the factory names them when refusing an unknown one.
	_, err := apikey.New(&providers.ProfileConfig{Provider: apikey.Name, Mode: "no-such-mode"}, providers.Env{Name: "doc"})
	var ce *providers.ConfigError
	if !errors.As(err, &ce) || ce.Key != "mode" {
		t.Fatalf("apikey with an unknown mode: %v; want a ConfigError for mode that names the modes", err)
	}
	_, list, _ := strings.Cut(ce.Message, "use ")
	apiModes := regexp.MustCompile(`"([a-z0-9_]+)"`).FindAllStringSubmatch(list, -1)
	if len(apiModes) == 0 {
		t.Fatalf("cannot read the apikey modes from %q", ce.Message)
	}
	for _, am := range apiModes {
		found := false
		for _, m := range modes {
			found = found || m.example.Provider == apikey.Name && (m.example.Mode == am[1] || m.example.Mode == "" && am[1] == "headers")
		}
		if !found {
			t.Errorf("%s has no section whose example is an apikey profile with mode = %q", configDoc, am[1])
		}
	}
}

// outcomeMessage is the factory's message when key is set (to its first dummy) in base.
func outcomeMessage(f providers.Factory, base providers.ProfileConfig, key string) string {
	field(&base, key).Set(dummies(field(&base, key).Type())[0])
	if _, err := f(&base, providers.Env{Name: "doc"}); err != nil {
		return err.Error()
	}
	return ""
}

// TestConfigDocKinds: the kinds these tests know are the ones the agent is built with:
// the keys of the map in factories() in cmd/authagent/serve.go.
func TestConfigDocKinds(t *testing.T) {
	var got []string
	ast.Inspect(parseGo(t, "cmd/authagent/serve.go"), func(n ast.Node) bool {
		fd, ok := n.(*ast.FuncDecl)
		if !ok || fd.Name.Name != "factories" {
			return true
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			if kv, ok := n.(*ast.KeyValueExpr); ok {
				got = append(got, strings.TrimSuffix(typeName(kv.Key), ".Name"))
			}
			return true
		})
		return false
	})
	if want := slices.Collect(maps.Keys(kindFactories)); !sameSet(got, want) {
		t.Errorf("cmd/authagent/serve.go builds the agent with the providers of packages %q; docs_test.go knows %q: add the new kind to kindFactories and document it in %s", got, want, configDoc)
	}
}

func sameSet(a, b []string) bool {
	return len(minus(a, b)) == 0 && len(minus(b, a)) == 0
}

// minus returns the elements of a that are not in b.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// ---- docs/api.md ----

const apiDoc = "docs/api.md"

// routeTable reads the patterns ("METHOD /path") of the route table in ipc/server's
// Server.Handler: the string literal that starts each row of the composite literal of
// slice type in its body.
func routeTable(t *testing.T) []string {
	t.Helper()
	var routes []string
	ast.Inspect(parseGo(t, "ipc/server/server.go"), func(n ast.Node) bool {
		fd, ok := n.(*ast.FuncDecl)
		if !ok || fd.Recv == nil || fd.Name.Name != "Handler" {
			return true
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			table, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if _, ok := table.Type.(*ast.ArrayType); !ok {
				return true
			}
			for _, el := range table.Elts {
				row, ok := el.(*ast.CompositeLit)
				if !ok || len(row.Elts) == 0 {
					t.Fatalf("a row of Server.Handler's route table is not a composite literal; this test reads them")
				}
				lit, ok := row.Elts[0].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("a row of Server.Handler's route table does not start with its pattern as a string literal; this test reads them")
				}
				p, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				routes = append(routes, p)
			}
			return false
		})
		return false
	})
	if len(routes) == 0 {
		t.Fatal("found no route table in Server.Handler (ipc/server/server.go)")
	}
	return routes
}

var routeRE = regexp.MustCompile(`\b(GET|HEAD|POST|PUT|PATCH|DELETE) (/v1[^\s` + "`" + `]*)`)

// TestAPIDocRoutes: every route of the agent's route table has a section in api.md whose
// heading is "METHOD /path", with a curl example of that method on that path, and is in
// the endpoint summary table; no section or summary row names a route the agent does not
// serve.
func TestAPIDocRoutes(t *testing.T) {
	routes := routeTable(t)
	secs := readDoc(t, apiDoc)
	sections := map[string]mdSection{}
	var summary []string
	for _, s := range secs {
		if m := routeRE.FindStringSubmatch(s.heading); m != nil {
			sections[m[1]+" "+m[2]] = s
		}
		for _, tb := range s.tables() {
			if len(tb.header) == 0 || tb.header[0] != "method, path" {
				continue
			}
			for _, r := range tb.rows {
				if m := routeRE.FindStringSubmatch(r[0]); m != nil {
					summary = append(summary, m[1]+" "+m[2])
				}
			}
		}
	}
	for _, r := range routes {
		if !slices.Contains(summary, r) {
			t.Errorf("%s: route %q is not in the endpoint table (the one headed \"method, path\")", apiDoc, r)
		}
		s, ok := sections[r]
		if !ok {
			t.Errorf("%s: route %q has no section (a heading \"`%s`\")", apiDoc, r, r)
			continue
		}
		method, pattern, _ := strings.Cut(r, " ")
		path := regexp.QuoteMeta(pattern)
		path = strings.ReplaceAll(path, regexp.QuoteMeta("{name}"), `[A-Za-z0-9._-]+`)
		url := regexp.MustCompile(`http://authagent` + path + `(\?|'|"|\s|$)`)
		found := false
		for _, b := range s.blocks() {
			// A command may go on over lines ending in a backslash.
			for _, cmd := range strings.Split(strings.ReplaceAll(b.text, "\\\n", " "), "\n") {
				if !strings.Contains(cmd, "curl ") || !strings.Contains(cmd, "--unix-socket") || !url.MatchString(cmd) {
					continue
				}
				if method == http.MethodGet && !strings.Contains(cmd, " -X ") || strings.Contains(cmd, " -X "+method+" ") {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s, section %q: no curl example (curl --unix-socket … %s http://authagent%s)", apiDoc, s.heading, method, pattern)
		}
	}
	for r := range sections {
		if !slices.Contains(routes, r) {
			t.Errorf("%s: section for %q, a route the agent does not serve", apiDoc, r)
		}
	}
	for _, r := range summary {
		if !slices.Contains(routes, r) {
			t.Errorf("%s: the endpoint table lists %q, a route the agent does not serve", apiDoc, r)
		}
	}
}

// constants returns the string constants declared in a Go file whose names start with
// prefix, by name.
func constants(t *testing.T, path, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ast.Inspect(parseGo(t, path), func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if !strings.HasPrefix(name.Name, prefix) || i >= len(vs.Values) {
				continue
			}
			if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out[name.Name] = v
			}
		}
		return true
	})
	return out
}

// httpStatuses maps the names of net/http's status constants to their numbers: from
// net/http's status.go in GOROOT, and else as far as they follow from http.StatusText
// ("Request Entity Too Large" → StatusRequestEntityTooLarge).
func httpStatuses(t *testing.T) map[string]int {
	m := map[string]int{}
	for code := 100; code < 600; code++ {
		text := http.StatusText(code)
		if text == "" {
			continue
		}
		name := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
				return r
			}
			return -1
		}, text)
		m["Status"+name] = code
	}
	src := filepath.Join(build.Default.GOROOT, "src", "net", "http", "status.go")
	f, err := parser.ParseFile(token.NewFileSet(), src, nil, 0)
	if err != nil {
		t.Logf("reading status names from %s: %v; using http.StatusText", src, err)
		return m
	}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if i < len(vs.Values) {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.INT {
					if v, err := strconv.Atoi(lit.Value); err == nil {
						m[name.Name] = v
					}
				}
			}
		}
		return true
	})
	return m
}

// codeStatuses reads, from the non-test files of package ipc/server, which HTTP statuses
// each error code is sent with: every composite literal that holds one http.StatusX and
// one ipc.CodeX among its elements (&ipc.Error{Status: …, Code: …}, and the rows of
// apiError's table).
func codeStatuses(t *testing.T, codes map[string]string) map[string][]int {
	t.Helper()
	statuses := httpStatuses(t)
	out := map[string][]int{}
	const dir = "ipc/server"
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, fi := range files {
		if !strings.HasSuffix(fi.Name(), ".go") || strings.HasSuffix(fi.Name(), "_test.go") {
			continue
		}
		ast.Inspect(parseGo(t, dir+"/"+fi.Name()), func(n ast.Node) bool {
			cl, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			status, code := "", ""
			for _, el := range cl.Elts {
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					el = kv.Value
				}
				switch x := el.(type) {
				case *ast.SelectorExpr:
					id, ok := x.X.(*ast.Ident)
					switch {
					case ok && id.Name == "http" && strings.HasPrefix(x.Sel.Name, "Status"):
						status = x.Sel.Name
					case ok && id.Name == "ipc":
						if _, ok := codes[x.Sel.Name]; ok {
							code = x.Sel.Name
						}
					}
				case *ast.Ident:
					if _, ok := codes[x.Name]; ok {
						code = x.Name
					}
				}
			}
			if status == "" || code == "" {
				return true
			}
			num, ok := statuses[status]
			if !ok {
				t.Fatalf("%s: http.%s: this test cannot tell its number", dir, status)
			}
			if c := codes[code]; !slices.Contains(out[c], num) {
				out[c] = append(out[c], num)
			}
			return true
		})
	}
	return out
}

// TestAPIDocErrors: the error table of api.md (the table headed "status | code") lists
// exactly the (status, code) pairs the agent answers with, and every Code constant of
// ipc/wire/wire.go is among them.
func TestAPIDocErrors(t *testing.T) {
	codes := constants(t, "ipc/wire/wire.go", "Code")
	if len(codes) == 0 {
		t.Fatal("found no Code constants in ipc/wire/wire.go")
	}
	sent := codeStatuses(t, codes)
	var want []string
	for name, c := range codes {
		if len(sent[c]) == 0 {
			t.Errorf("ipc.%s (%q): found no answer that sends it with a status (a composite literal with http.StatusX and %s); cannot check its documentation", name, c, name)
		}
		for _, n := range sent[c] {
			want = append(want, fmt.Sprintf("%d %s", n, c))
		}
	}
	var got []string
	for _, s := range readDoc(t, apiDoc) {
		for _, tb := range s.tables() {
			if len(tb.header) < 2 || tb.header[0] != "status" || tb.header[1] != "code" {
				continue
			}
			for _, r := range tb.rows {
				got = append(got, r[0]+" "+strings.Trim(r[1], "`"))
			}
		}
	}
	if missing := minus(want, got); len(missing) > 0 {
		t.Errorf("%s: the error table lacks %q (status code)", apiDoc, missing)
	}
	if stale := minus(got, want); len(stale) > 0 {
		t.Errorf("%s: the error table lists %q, which the agent never answers", apiDoc, stale)
	}
}

// typeSections maps each Go type name written in backticks in a heading of api.md
// ("### `Error` (`errorBody`)") to that heading's section.
func typeSections(t *testing.T) map[string]mdSection {
	secs := map[string]mdSection{}
	tick := regexp.MustCompile("`([A-Za-z][A-Za-z0-9]*)`")
	for _, s := range readDoc(t, apiDoc) {
		for _, m := range tick.FindAllStringSubmatch(s.heading, -1) {
			secs[m[1]] = s
		}
	}
	return secs
}

// TestAPIDocWireTypes: every struct type of ipc/wire/wire.go has a section in api.md (its name
// in backticks in the heading) whose field tables list exactly the JSON names of its
// fields, together with the other types named in that heading. A type that embeds another
// without a JSON name (ProfileSpec embeds the profile's config keys) must link to
// config.md, where those keys are checked.
func TestAPIDocWireTypes(t *testing.T) {
	wire := structTags(t, "ipc/wire/wire.go", "json")
	if len(wire) == 0 {
		t.Fatal("found no struct types in ipc/wire/wire.go")
	}
	secs := typeSections(t)
	tick := regexp.MustCompile("`([A-Za-z][A-Za-z0-9]*)`")
	for typ := range wire {
		s, ok := secs[typ]
		if !ok {
			t.Errorf("%s: wire type %s has no section (a heading with `%s` in it)", apiDoc, typ, typ)
			continue
		}
		var want []string
		for _, m := range tick.FindAllStringSubmatch(s.heading, -1) {
			for _, f := range wire[m[1]] {
				if strings.HasPrefix(f, "…") {
					if !strings.Contains(s.text(), "(config.md)") {
						t.Errorf("%s, section %q: %s embeds %s; say that its keys are those of config.md, with a link", apiDoc, s.heading, m[1], f[len("…"):])
					}
					continue
				}
				want = append(want, f)
			}
		}
		if got := s.column("field"); !sameSet(got, want) {
			t.Errorf("%s, section %q lists fields %q; the JSON names are %q: missing %q, not sent %q", apiDoc, s.heading, got, want, minus(want, got), minus(got, want))
		}
	}
}

// TestAPIDocValues: every profile state (ipc's State constants) and event type (agent's
// Event constants, and "current") is in its table in api.md.
func TestAPIDocValues(t *testing.T) {
	secs := readDoc(t, apiDoc)
	column := func(header string) []string {
		var out []string
		for _, s := range secs {
			out = append(out, s.column(header)...)
		}
		return out
	}
	states := slices.Collect(maps.Values(constants(t, "ipc/wire/wire.go", "State")))
	if got := column("state"); len(states) == 0 || !sameSet(got, states) {
		t.Errorf("%s: the states table lists %q; the states are %q", apiDoc, got, states)
	}
	types := append(slices.Collect(maps.Values(constants(t, "agent/events.go", "Event"))), "current")
	if got := column("type"); len(types) == 1 || !sameSet(got, types) {
		t.Errorf("%s: the event types table lists %q; the types are %q", apiDoc, got, types)
	}
}

// TestAPIDocLimits: the limits table of api.md gives the agent's limits as they are.
func TestAPIDocLimits(t *testing.T) {
	var text string
	for _, s := range readDoc(t, apiDoc) {
		if s.heading == "Limits" {
			text = s.text()
		}
	}
	bytes := func(n int) string {
		switch {
		case n%(1<<20) == 0:
			return fmt.Sprintf("%d MiB", n>>20)
		case n%(1<<10) == 0:
			return fmt.Sprintf("%d KiB", n>>10)
		}
		return fmt.Sprintf("%d bytes", n)
	}
	for what, want := range map[string]string{
		"server.MaxBodyBytes": bytes(server.MaxBodyBytes),
		"agent.MaxSecretSize": bytes(agent.MaxSecretSize),
		"ipc.ClientIdle":      fmt.Sprintf("%d s", int(ipc.ClientIdle/time.Second)),
		"server.ClientWrite":  fmt.Sprintf("%d s", int(server.ClientWrite/time.Second)),
	} {
		if !strings.Contains(text, "| "+want+" |") {
			t.Errorf("%s, section Limits: no row with %q (%s)", apiDoc, want, what)
		}
	}
}
