package agent

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/authagent/authagent/providers"
)

// Parsing and validation: the strict decode of the config file, the checks the decoder
// lets through, and the scan of the syntax tree that finds where every key is.

// ParseConfig decodes a config file strictly and validates it. Every problem is a
// *ConfigError with path, line and key; when there are several, they are joined
// (errors.Join) in the order of their lines.
func ParseConfig(path string, data []byte) (*Config, error) {
	if bytes.HasPrefix(data, []byte("\ufeff")) {
		return nil, &ConfigError{Path: path, Line: 1, Key: "", Message: "the file starts with a byte order mark (BOM), which TOML does not allow; save it as UTF-8 without one"}
	}
	doc, scanErr := scanConfig(data) // a syntax error comes with its position from the decoder too
	c := &Config{Path: path, lines: doc.lines}

	var f configFile
	err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(&f)
	var errs []*ConfigError
	var missing *toml.StrictMissingError
	var decodeErr *toml.DecodeError
	switch {
	case err == nil:
	case errors.As(err, &missing):
		// The rest of the file was decoded: report unknown keys together with the rest.
		for i := range missing.Errors {
			errs = append(errs, c.unknownKeyError(&missing.Errors[i]))
		}
	case errors.As(err, &decodeErr):
		// The decoder stops at a bad value; still name every unknown key.
		errs = append(errs, c.decodeError(doc, decodeErr))
		if scanErr == nil {
			errs = append(errs, c.unknownKeys(doc)...)
		}
		return nil, joinConfigErrors(errs)
	default:
		return nil, &ConfigError{Path: path, Message: err.Error()}
	}

	errs = append(errs, c.checkKeys(doc)...)
	switch f.SecretStore {
	case "":
		f.SecretStore = "keyring"
	case "keyring", "memory":
	default:
		errs = append(errs, &ConfigError{Path: path, Line: c.line("secret_store"), Key: "secret_store",
			Message: fmt.Sprintf("%q is not a secret store: want \"keyring\" or \"memory\"", f.SecretStore)})
	}
	if f.Profile == nil {
		f.Profile = map[string]*providers.ProfileConfig{}
	}
	for name, pc := range f.Profile {
		if !validProfileName(name) {
			errs = append(errs, &ConfigError{Path: path, Line: c.line("profile", name), Key: configKeyString("profile", name),
				Message: "bad profile name: use letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit"})
		}
		if pc == nil {
			pc = &providers.ProfileConfig{}
			f.Profile[name] = pc
		}
		if pc.Provider == "" {
			errs = append(errs, &ConfigError{Path: path, Line: c.line("profile", name), Key: configKeyString("profile", name, "provider"),
				Message: `missing: every profile needs a provider ("devicecode", "externaljwt" or "apikey")`})
		}
	}
	if len(errs) > 0 {
		return nil, joinConfigErrors(errs)
	}
	c.SecretStore = f.SecretStore
	c.Profiles = f.Profile
	c.text = newConfigText(data, doc)
	return c, nil
}

// checkKeys finds what the decoder lets through: keys that match a field only when case is
// ignored, and durations written as numbers (which would decode as nanoseconds).
func (c *Config) checkKeys(doc *configDoc) []*ConfigError {
	fields := profileFields()
	var profileKeys []string
	for k := range fields {
		profileKeys = append(profileKeys, k)
	}
	rootKeys := []string{"secret_store", "profile"}
	reported := map[string]bool{}
	var errs []*ConfigError
	for _, ent := range doc.entries {
		k := ent.key
		for _, part := range []struct {
			pos   int
			known []string
		}{{0, rootKeys}, {2, profileKeys}} {
			pos, known := part.pos, part.known
			if len(k) <= pos || pos == 2 && k[0] != "profile" {
				continue
			}
			want := caseMismatch(k[pos], known)
			id := strings.Join(k[:pos+1], configKeySep)
			if want == "" || reported[id] {
				continue
			}
			reported[id] = true
			errs = append(errs, &ConfigError{Path: c.Path, Line: ent.line, Key: configKeyString(k[:pos+1]...),
				Message: fmt.Sprintf("unknown key; did you mean %q? (keys are lowercase)", want)})
		}
		if len(k) == 3 && k[0] == "profile" && fields[k[2]] == reflect.TypeFor[providers.Duration]() &&
			ent.kind != unstable.String && kindWord(ent.kind) != "" {
			errs = append(errs, &ConfigError{Path: c.Path, Line: ent.line, Key: configKeyString(k...),
				Message: fmt.Sprintf("want %s, not %s", wantedValue(k), kindWord(ent.kind))})
		}
	}
	return errs
}

// caseMismatch returns the known key that got matches only when case is ignored, or "".
func caseMismatch(got string, known []string) string {
	for _, k := range known {
		if got == k {
			return ""
		}
	}
	for _, k := range known {
		if strings.EqualFold(got, k) {
			return k
		}
	}
	return ""
}

// profileFields maps each key a profile table may have to its Go type.
func profileFields() map[string]reflect.Type {
	t := reflect.TypeFor[providers.ProfileConfig]()
	m := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name != "" && name != "-" {
			m[name] = f.Type
		}
	}
	return m
}

func hasSuffix(key, suffix []string) bool {
	if len(suffix) > len(key) {
		return false
	}
	off := len(key) - len(suffix)
	for i, s := range suffix {
		if key[off+i] != s {
			return false
		}
	}
	return true
}

// configKeyString writes a key as TOML would: parts joined by dots, quoted where needed.
func configKeyString(parts ...string) string {
	q := make([]string, len(parts))
	for i, p := range parts {
		q[i] = configKeyPart(p)
	}
	return strings.Join(q, ".")
}

func configKeyPart(p string) string {
	if p == "" {
		return `""`
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return strconv.Quote(p)
		}
	}
	return p
}

// configKeySep joins key parts in map keys; it cannot occur in a TOML key.
const configKeySep = "\x00"

// configDoc is what a scan of the TOML syntax tree finds: where every key and table is.
type configDoc struct {
	entries  []configEntry
	lines    map[string]int    // key → line of its first appearance (prefixes included)
	kinds    map[string]string // key → kindWord of its scalar value
	comments map[int]bool      // lines that hold nothing but a comment
}

type configEntry struct {
	key   []string // full key, table prefix included
	line  int
	kind  unstable.Kind // value kind of a key-value; Invalid for tables
	table int           // index of the table header entry it belongs to; -1 for the root
	// header is set for table headers; array marks [[array]] tables.
	header, array bool
}

// scanConfig walks the syntax tree of data. It returns what it found up to a syntax error.
func scanConfig(data []byte) (*configDoc, error) {
	doc := &configDoc{lines: map[string]int{}, kinds: map[string]string{}, comments: map[int]bool{}}
	var newlines []int
	for i, b := range data {
		if b == '\n' {
			newlines = append(newlines, i)
		}
	}
	lineOf := func(r unstable.Range) int { return sort.SearchInts(newlines, int(r.Offset)) + 1 }

	p := unstable.Parser{KeepComments: true}
	p.Reset(data)
	var table []string
	tableIdx := -1
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Comment:
			doc.comments[lineOf(e.Raw)] = true
		case unstable.Table, unstable.ArrayTable:
			key, line := keyParts(e, lineOf)
			table = key
			tableIdx = len(doc.entries)
			doc.add(configEntry{key: key, line: line, table: -1, header: true, array: e.Kind == unstable.ArrayTable})
		case unstable.KeyValue:
			doc.addKeyValue(e, table, tableIdx, lineOf)
		}
	}
	return doc, p.Error()
}

func keyParts(e *unstable.Node, lineOf func(unstable.Range) int) ([]string, int) {
	var key []string
	line := 0
	it := e.Key()
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = lineOf(n.Raw)
		}
		key = append(key, string(n.Data))
	}
	return key, line
}

func (d *configDoc) addKeyValue(e *unstable.Node, prefix []string, tableIdx int, lineOf func(unstable.Range) int) {
	k, line := keyParts(e, lineOf)
	key := append(append([]string(nil), prefix...), k...)
	v := e.Value()
	d.add(configEntry{key: key, line: line, kind: v.Kind, table: tableIdx})
	if w := kindWord(v.Kind); w != "" {
		d.kinds[strings.Join(key, configKeySep)] = w
	}
	if v.Kind == unstable.InlineTable {
		it := v.Children()
		for it.Next() {
			d.addKeyValue(it.Node(), key, tableIdx, lineOf)
		}
	}
}

// add records an entry and the lines of its key and the key's prefixes.
func (d *configDoc) add(ent configEntry) {
	d.entries = append(d.entries, ent)
	for n := len(ent.key); n > 0; n-- {
		k := strings.Join(ent.key[:n], configKeySep)
		if _, ok := d.lines[k]; !ok {
			d.lines[k] = ent.line
		}
	}
}
