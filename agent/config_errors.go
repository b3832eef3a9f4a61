package agent

import (
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

// Error positions and suggestions: every problem in the config file becomes a
// *ConfigError that names the file, the line and the full key, with a "did you mean"
// where a known key is close.

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
