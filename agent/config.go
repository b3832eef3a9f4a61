package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/authagent/authagent/providers"
)

// The config file: where it is and how it is read. Parsing and validation are in
// config_parse.go, error positions and suggestions in config_errors.go, and the
// byte-preserving edits of PUT and DELETE in config_edit.go.

// Config is the parsed config file: the non-secret half of every profile.
type Config struct {
	Path        string
	SecretStore string // "keyring" (default) or "memory"
	Profiles    map[string]*providers.ProfileConfig

	// lines maps a key (parts joined by configKeySep) to the line where it first appears,
	// so that errors found after decoding (by provider factories) can point into the file.
	lines map[string]int
	// text is the file's text, indexed for edits (see editConfig); set by ParseConfig.
	text *configText
}

// configFile is the shape of the whole file.
type configFile struct {
	SecretStore string                              `toml:"secret_store"`
	Profile     map[string]*providers.ProfileConfig `toml:"profile"`
}

// served is the config as an agent keeps it while serving it: without the positions of
// its keys, which only errors found while loading it need and which take megabytes for
// thousands of profiles, and without its text, which the agent keeps apart (Agent.text).
// The profiles are shared, not copied.
func (c *Config) served() *Config {
	s := *c
	s.lines, s.text = nil, nil
	return &s
}

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
