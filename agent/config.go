package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/authagent/authagent/providers"
)

// Config is the parsed config file: the non-secret half of every profile.
type Config struct {
	Path        string
	SecretStore string // "keyring" (default) or "memory"
	Profiles    map[string]*providers.ProfileConfig

	// lines maps a key (parts joined by configKeySep) to the line where it first appears,
	// so that errors found after decoding (by provider factories) can point into the file.
	lines map[string]int
}

// ConfigError locates a problem in the config file.
type ConfigError struct {
	Path    string
	Line    int    // 0 when unknown
	Key     string // full dotted key, e.g. "profile.work.scopes"; empty for syntax errors
	Message string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// ErrNoSuchProfile is returned (wrapped) by RemoveProfile when the file has no such profile.
var ErrNoSuchProfile = errors.New("no such profile")

// DefaultConfigPath is $AUTHAGENT_CONFIG, else $XDG_CONFIG_HOME/authagent/config.toml, else
// $HOME/.config/authagent/config.toml.
func DefaultConfigPath() (string, error) {
	if p := os.Getenv("AUTHAGENT_CONFIG"); p != "" {
		return p, nil
	}
	// The XDG spec says to ignore a relative $XDG_CONFIG_HOME.
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "authagent", "config.toml"), nil
	}
	if h := os.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "authagent", "config.toml"), nil
	}
	return "", errors.New("no config path: set $AUTHAGENT_CONFIG, $XDG_CONFIG_HOME or $HOME, or pass --config")
}

// ErrNoConfig is wrapped by the error of a reload that found the config file missing, or
// empty (nothing but blank lines and comments): the agent keeps the config it has, since
// editors and sync tools empty a file while they save it.
var ErrNoConfig = errors.New("config file missing or empty")

// LoadConfig reads and parses the config file for a starting agent. A missing file is an
// empty config. It first removes the temporary files that an agent killed while writing
// the file left in its directory (see removeStaleTemps).
func LoadConfig(path string) (*Config, error) {
	removeStaleTemps(path)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{Path: path, SecretStore: "keyring", Profiles: map[string]*providers.ProfileConfig{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(path, data)
}

// reloadConfig reads and parses the config file for a reload. Unlike LoadConfig, a missing
// file, or one with nothing but blank lines and comments, is an error wrapping ErrNoConfig.
// A file that holds only secret_store = "…" is a config without profiles.
func reloadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, providers.Mark(ErrNoConfig, fmt.Errorf("%s is missing", path))
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if doc, err := scanConfig(data); err == nil && len(doc.entries) == 0 {
		return nil, providers.Mark(ErrNoConfig, fmt.Errorf("%s is empty (nothing but blank lines and comments)", path))
	}
	return ParseConfig(path, data)
}

// removeStaleTemps removes what writeFileAtomic leaves next to the config file when the
// agent is killed between creating its temporary file and renaming it: regular files
// named like its temporary files (".config.toml.<digits>.tmp") in the directory the file
// (or the file a symlink at path points to) is written in, and owned by this user.
// Nothing else is touched, and failures are ignored: the files only take space.
func removeStaleTemps(path string) {
	target := path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		target = t
	}
	dir, base := filepath.Dir(target), filepath.Base(target)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range entries {
		if !isConfigTemp(base, ent.Name()) || !ent.Type().IsRegular() {
			continue
		}
		if fi, err := ent.Info(); err == nil && ownedByMe(fi) {
			os.Remove(filepath.Join(dir, ent.Name()))
		}
	}
}

// isConfigTemp reports whether name is a temporary file writeFileAtomic makes for the
// config file base: os.CreateTemp puts decimal digits where its pattern has "*".
func isConfigTemp(base, name string) bool {
	mid, ok := strings.CutPrefix(name, configTempPrefix(base))
	if !ok {
		return false
	}
	mid, ok = strings.CutSuffix(mid, ".tmp")
	if !ok || mid == "" {
		return false
	}
	for _, c := range mid {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func configTempPrefix(base string) string { return "." + base + "." }

// configFile is the shape of the whole file.
type configFile struct {
	SecretStore string                              `toml:"secret_store"`
	Profile     map[string]*providers.ProfileConfig `toml:"profile"`
}

// ParseConfig decodes a config file strictly and validates it. Every problem is a
// *ConfigError with path, line and key; when there are several, they are joined
// (errors.Join) in the order of their lines.
func ParseConfig(path string, data []byte) (*Config, error) {
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
	return c, nil
}

// Locate attaches the file, line and full key to an error from a provider factory for
// profile. A *providers.ConfigError becomes a *ConfigError pointing at its key (or at the
// profile's table when the key is not in the file); any other error is wrapped with the
// path and the profile name.
func (c *Config) Locate(profile string, err error) error {
	if err == nil {
		return nil
	}
	line := c.line("profile", profile)
	var pe *providers.ConfigError
	if !errors.As(err, &pe) {
		if line > 0 {
			return fmt.Errorf("%s:%d: profile %s: %w", c.Path, line, profile, err)
		}
		return fmt.Errorf("%s: profile %s: %w", c.Path, profile, err)
	}
	key := configKeyString("profile", profile)
	if pe.Key != "" {
		key += "." + pe.Key
		// A provider may name a key inside a table ("headers.X-Api-Key"): use the deepest
		// part that is in the file.
		parts := append([]string{"profile", profile}, strings.Split(pe.Key, ".")...)
		if l := c.line("profile", profile, pe.Key); l > 0 {
			line = l
		} else {
			for n := len(parts); n > 2; n-- {
				if l := c.line(parts[:n]...); l > 0 {
					line = l
					break
				}
			}
		}
	}
	return &ConfigError{Path: c.Path, Line: line, Key: key, Message: pe.Message}
}

func (c *Config) line(key ...string) int {
	if c == nil {
		return 0
	}
	return c.lines[strings.Join(key, configKeySep)]
}

func (c *Config) unknownKeyError(e *toml.DecodeError) *ConfigError {
	line, _ := e.Position()
	key := e.Key()
	msg := "unknown key"
	if strings.Contains(e.Error(), "table") {
		msg = "unknown table"
	}
	if s := suggestKey(key); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return &ConfigError{Path: c.Path, Line: line, Key: configKeyString(key...), Message: msg}
}

// decodeError turns a syntax or type error into a *ConfigError with the full key.
func (c *Config) decodeError(doc *configDoc, e *toml.DecodeError) *ConfigError {
	line, _ := e.Position()
	key := []string(e.Key())
	// Some errors (a key defined twice) carry only the key as written in its table.
	best := key
	for _, ent := range doc.entries {
		if ent.line == line && len(ent.key) > len(best) && hasSuffix(ent.key, key) {
			best = ent.key
		}
	}
	key = best
	msg := strings.TrimPrefix(e.Error(), "toml: ")
	if strings.HasPrefix(msg, "cannot decode TOML ") {
		if want := wantedValue(key); want != "" {
			msg = "want " + want
			if got := doc.kinds[strings.Join(key, configKeySep)]; got != "" {
				msg += ", not " + got
			}
		}
	}
	return &ConfigError{Path: c.Path, Line: line, Key: configKeyString(key...), Message: msg}
}

// unknownKeys finds the keys and tables the decoder would report as unknown, for when it
// stopped early.
func (c *Config) unknownKeys(doc *configDoc) []*ConfigError {
	fields := profileFields()
	reported := map[string]bool{}
	var errs []*ConfigError
entries:
	for _, ent := range doc.entries {
		k := ent.key
		for n := 1; n <= len(k); n++ {
			if reported[strings.Join(k[:n], configKeySep)] {
				continue entries // inside an unknown table
			}
		}
		known := strings.EqualFold(k[0], "secret_store") || strings.EqualFold(k[0], "profile")
		if known && len(k) >= 3 && k[0] == "profile" {
			known = false
			for f := range fields {
				known = known || strings.EqualFold(k[2], f)
			}
		}
		if known {
			continue
		}
		msg := "unknown key"
		if ent.header {
			msg = "unknown table"
		}
		if s := suggestKey(k); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		reported[strings.Join(k, configKeySep)] = true
		errs = append(errs, &ConfigError{Path: c.Path, Line: ent.line, Key: configKeyString(k...), Message: msg})
	}
	return errs
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

func joinConfigErrors(errs []*ConfigError) error {
	sort.SliceStable(errs, func(i, j int) bool {
		if errs[i].Line != errs[j].Line {
			return errs[i].Line < errs[j].Line
		}
		return errs[i].Key < errs[j].Key
	})
	if len(errs) == 1 {
		return errs[0]
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
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

// suggestKey returns the known key closest to an unknown one, or "".
func suggestKey(key []string) string {
	var candidates []string
	var got string
	switch {
	case len(key) >= 1 && key[0] != "profile" && key[0] != "secret_store":
		candidates, got = []string{"secret_store", "profile"}, key[0]
	case len(key) == 3 && key[0] == "profile":
		for k := range profileFields() {
			candidates = append(candidates, k)
		}
		got = key[2]
	default:
		return ""
	}
	sort.Strings(candidates)
	best, bestDist := "", 3 // more than two edits away is no suggestion
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(got), c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// wantedValue describes the value a key takes, or "" when unknown.
func wantedValue(key []string) string {
	switch {
	case len(key) == 1 && key[0] == "secret_store":
		return "a string"
	case len(key) == 1 && key[0] == "profile", len(key) == 2 && key[0] == "profile":
		return "a table"
	case len(key) >= 3 && key[0] == "profile":
		t, ok := profileFields()[key[2]]
		if !ok {
			return ""
		}
		if len(key) > 3 {
			t = t.Elem()
		}
		switch {
		case t == reflect.TypeFor[providers.Duration]():
			return `a duration string such as "90s" or "5m"`
		case t.Kind() == reflect.String:
			return "a string"
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
			return "an array of strings"
		case t.Kind() == reflect.Map && t.Elem().Kind() == reflect.String:
			return "a table of strings"
		}
	}
	return ""
}

// kindWord names a scalar TOML value kind for an error message, or "" for containers
// (whose bad part is inside them).
func kindWord(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Bool:
		return "a boolean"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "a date/time"
	}
	return ""
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

// WriteProfile defines or replaces profile name in the config file at path, keeping the
// rest of the file byte for byte. The profile's section — its [profile.NAME] header, its
// sub-tables ([profile.NAME.headers]) and everything up to the next other table header —
// is replaced by freshly written TOML; without one, a section is appended. Comment lines
// directly above a header (no blank line in between) belong to that header and are kept.
// The file (and its directory, 0700) is created 0600 when missing; an existing file keeps
// its mode. The write is atomic, and refused when the result would not load.
func WriteProfile(path, name string, cfg *providers.ProfileConfig) error {
	if !validProfileName(name) {
		return fmt.Errorf("profile name %q: use letters, digits, '.', '_' and '-' (at most 64)", name)
	}
	if cfg == nil {
		return errors.New("write profile: no configuration")
	}
	var body bytes.Buffer
	body.WriteString("[profile." + configKeyPart(name) + "]\n")
	// Inline tables keep headers, metadata and env inside the profile's one section.
	if err := toml.NewEncoder(&body).SetTablesInline(true).Encode(cfg); err != nil {
		return fmt.Errorf("write profile %s: %w", name, err)
	}
	// TOML holds UTF-8 only; the encoder would silently change other bytes. Refuse a value
	// that does not come back as it went in.
	if back, err := ParseConfig(path, body.Bytes()); err != nil || !reflect.DeepEqual(back.Profiles[name], cfg) {
		return fmt.Errorf("write profile %s: a value cannot be written to the config file as it is (is it valid UTF-8?)", name)
	}
	return editConfig(path, name, func(ed *configEdit) error {
		section := ed.newlines(body.String())
		if len(ed.regions) == 0 {
			ed.appendSection(section)
			return nil
		}
		for i := len(ed.regions) - 1; i > 0; i-- {
			ed.remove(ed.regions[i])
		}
		r := ed.regions[0]
		ed.replace(r.start, r.end, section)
		return nil
	})
}

// RemoveProfile removes profile name from the config file at path: its header, its
// sub-tables and the comment lines directly above the header (no blank line in between),
// plus one run of blank lines that separated it from its neighbour. The rest of the file
// stays byte for byte. A profile that is not in the file is an error wrapping
// ErrNoSuchProfile.
func RemoveProfile(path, name string) error {
	return editConfig(path, name, func(ed *configEdit) error {
		if len(ed.regions) == 0 {
			return fmt.Errorf("profile %s: %w", name, ErrNoSuchProfile)
		}
		for i := len(ed.regions) - 1; i >= 0; i-- {
			ed.remove(ed.regions[i])
		}
		return nil
	})
}

// configEdit is a config file as lines, with the sections of one profile located.
type configEdit struct {
	lines   []string // each with its line ending; the last may have none
	orig    []int    // for each of lines, its number in the file as read; 0 for a new line
	regions []configRegion
	doc     *configDoc
	crlf    bool
}

// configRegion is a run of one profile's table headers and their contents: lines
// [start, end), 0-based, and the comment lines directly above it from above on.
type configRegion struct {
	above, start, end int
}

// editConfig reads the file, locates profile name, lets edit change the lines and writes
// the result atomically if it still loads.
func editConfig(path, name string, edit func(*configEdit) error) error {
	// Edit the file a symlink points to (dotfile managers), not the link.
	target := path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		target = t
	}
	mode := fs.FileMode(0o600)
	data, err := os.ReadFile(target)
	switch {
	case err == nil:
		if fi, err := os.Stat(target); err == nil {
			mode = fi.Mode().Perm()
		}
	case errors.Is(err, fs.ErrNotExist):
		data = nil
	default:
		return fmt.Errorf("read config: %w", err)
	}
	doc, err := scanConfig(data)
	if err != nil {
		if _, perr := ParseConfig(path, data); perr != nil {
			err = perr
		}
		return fmt.Errorf("fix the config file by hand first: %w", err)
	}
	ed := &configEdit{lines: splitLines(data), doc: doc, crlf: bytes.Contains(data, []byte("\r\n"))}
	for i := range ed.lines {
		ed.orig = append(ed.orig, i+1)
	}
	if err := ed.locate(name); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := edit(ed); err != nil {
		return err
	}
	out := []byte(strings.Join(ed.lines, ""))
	if _, err := ParseConfig(path, out); err != nil {
		// The lines of the edited text are not the file's: point at the file's own.
		ed.fileLines(err)
		return fmt.Errorf("the edited file would not load, so it was left as it was: %w", err)
	}
	return writeFileAtomic(target, out, mode)
}

func splitLines(data []byte) []string {
	var lines []string
	s := string(data)
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i+1])
		s = s[i+1:]
	}
	return lines
}

func (ed *configEdit) blank(i int) bool { return strings.TrimSpace(ed.lines[i]) == "" }

func (ed *configEdit) comment(i int) bool { return ed.doc.comments[i+1] }

// locate finds the regions of profile name. It refuses profiles (partly) defined outside
// their own tables, by dotted keys or inline tables, which a section edit cannot handle.
func (ed *configEdit) locate(name string) error {
	ours := func(key []string) bool { return len(key) >= 2 && key[0] == "profile" && key[1] == name }
	var headers []int // line indexes of all table headers, in order
	var mine []bool
	for _, ent := range ed.doc.entries {
		if ent.header {
			headers = append(headers, ent.line-1)
			mine = append(mine, ours(ent.key))
			continue
		}
		if ours(ent.key) && (ent.table < 0 || !ours(ed.doc.entries[ent.table].key)) {
			return fmt.Errorf("line %d: profile %s is defined outside its [profile.%s] table; edit it by hand", ent.line, name, configKeyPart(name))
		}
	}
	for i := 0; i < len(headers); i++ {
		if !mine[i] {
			continue
		}
		j := i
		for j+1 < len(headers) && mine[j+1] {
			j++
		}
		r := configRegion{start: headers[i]}
		if j+1 < len(headers) {
			r.end = ed.attachedAbove(headers[j+1], r.start+1)
			for r.end > r.start+1 && ed.blank(r.end-1) {
				r.end--
			}
		} else {
			r.end = len(ed.lines)
			for r.end > r.start+1 && ed.blank(r.end-1) {
				r.end--
			}
		}
		lo := 0
		if len(ed.regions) > 0 {
			lo = ed.regions[len(ed.regions)-1].end
		}
		r.above = ed.attachedAbove(r.start, lo)
		ed.regions = append(ed.regions, r)
		i = j
	}
	return nil
}

// attachedAbove returns the first line of the comment block directly above line h, not
// going above line lo.
func (ed *configEdit) attachedAbove(h, lo int) int {
	for h > lo && ed.comment(h-1) {
		h--
	}
	return h
}

// newlines converts text written with \n to the file's line endings.
func (ed *configEdit) newlines(s string) []string {
	if ed.crlf {
		s = strings.ReplaceAll(s, "\n", "\r\n")
	}
	return splitLines([]byte(s))
}

func (ed *configEdit) replace(start, end int, with []string) {
	ed.lines = append(ed.lines[:start:start], append(with, ed.lines[end:]...)...)
	ed.orig = append(ed.orig[:start:start], append(make([]int, len(with)), ed.orig[end:]...)...)
}

// fileLines changes the line numbers of the *ConfigErrors in err (one, or joined) from
// lines of the edited text to lines of the file as read. An error on a line the edit
// wrote keeps no line number.
func (ed *configEdit) fileLines(err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			ed.fileLines(e)
		}
		return
	}
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line <= 0 {
		return
	}
	if ce.Line <= len(ed.orig) {
		ce.Line = ed.orig[ce.Line-1]
	} else {
		ce.Line = 0
	}
}

// remove deletes a region with the comments above it and the blank lines after it; at the
// end of the file, the blank lines before it instead, so the file ends with its last table.
func (ed *configEdit) remove(r configRegion) {
	start, end := r.above, r.end
	for end < len(ed.lines) && ed.blank(end) {
		end++
	}
	if end == len(ed.lines) {
		for start > 0 && ed.blank(start-1) {
			start--
		}
	}
	ed.replace(start, end, nil)
}

// appendSection adds a section at the end, after one blank line.
func (ed *configEdit) appendSection(section []string) {
	nl := "\n"
	if ed.crlf {
		nl = "\r\n"
	}
	if n := len(ed.lines); n > 0 {
		if !strings.HasSuffix(ed.lines[n-1], "\n") {
			ed.lines[n-1] += nl
		}
		if !ed.blank(n - 1) {
			ed.lines = append(ed.lines, nl)
			ed.orig = append(ed.orig, 0)
		}
	}
	ed.lines = append(ed.lines, section...)
	ed.orig = append(ed.orig, make([]int, len(section))...)
}

// writeFileAtomic replaces path with data: a temporary file in the same directory, synced,
// then renamed over it, so a reader sees the old file or the new one, never a torn one.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create config directory: %w", err)
	}
	// removeStaleTemps knows this name: change both together.
	f, err := os.CreateTemp(dir, configTempPrefix(filepath.Base(path))+"*.tmp")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	// Make the rename itself durable; not every filesystem supports syncing a directory.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
