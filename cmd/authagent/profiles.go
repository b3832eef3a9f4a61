package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/gitsetup"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/providers/apikey"
	"github.com/authagent/authagent/providers/devicecode"
	"github.com/authagent/authagent/providers/externaljwt"
)

func newAddCmd(c *cli) *cobra.Command {
	var spec ipc.ProfileConfig
	var headers, metadata []string
	var noSecret, withSecret bool
	cmd := &cobra.Command{
		Use:   "add NAME --provider KIND [flags]",
		Short: "Define a profile (or redefine it) and store its secret",
		Long: `Define a profile in the agent's config file, or replace its definition, and store its
secret in the secret store. The secret is read from stdin, or with a no-echo prompt when
stdin is a terminal; it is never taken from the command line.

    printf %s "$KEY" | authagent add hub --provider apikey --key-id a1b2c3 \
        --header 'X-API-Key-ID={key_id}' --header 'X-API-Key={secret}' --host api.example.com

apikey profiles read a secret unless --no-secret (keep the stored one) is given; other
kinds read one (e.g. an OAuth client secret) only with --secret. To store or replace the
secret of a profile and change nothing else, use ` + "`authagent set-secret NAME`" + `.

Without --host the token goes to no URL (curl, git and Go's ipc.Transport pick a profile by
its hosts); token, header and exec still work by name.`,
		Args: exactArgs(1, "NAME --provider KIND [flags]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if spec.Provider == "" {
				return usageError{"--provider is required (" + orList(providerNames) + ")"}
			}
			if err := oneOf("--provider", spec.Provider, providerNames); err != nil {
				return err
			}
			if spec.Provider == apikey.Name && spec.Mode != "" {
				if err := oneOf("--mode", spec.Mode, apikeyModes); err != nil {
					return err
				}
			}
			var err error
			if spec.Headers, err = keyValues("--header", headers); err != nil {
				return err
			}
			if spec.Metadata, err = keyValues("--metadata", metadata); err != nil {
				return err
			}
			body := ipc.ProfileSpec{ProfileConfig: spec}
			if withSecret || (spec.Provider == "apikey" && !noSecret) {
				s, err := readSecret(fmt.Sprintf("Secret for %s: ", name), "authagent add "+name+" …")
				if err != nil {
					return err
				}
				body.Secret = &s
			}
			if err := c.client.PutProfile(cmd.Context(), name, body); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "profile %s saved\n", name)
			if len(spec.Hosts) == 0 {
				fmt.Fprintf(os.Stderr, "warning: profile %s has no hosts, so its token goes to no URL: authagent curl, git and "+
					"Go's ipc.Transport pick a profile by its hosts, and only token, header and exec (`authagent token %s`) use it by name. "+
					"To send it to a host, run this add again with --host HOST added.\n", name, name)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Provider, "provider", "", "credential kind: "+orList(providerNames))
	f.StringSliceVar(&spec.Hosts, "host", nil, "host the token may be sent to (repeatable; *.example.com for subdomains)")
	f.StringVar(&spec.Username, "username", "", "user name for git (default oauth2)")
	f.StringVar(&spec.Mode, "mode", "", "apikey mode: headers (default), client_credentials or sigv4")
	f.StringVar(&spec.KeyID, "key-id", "", "apikey: key id, usable as {key_id} in templates")
	f.StringArrayVar(&headers, "header", nil, "apikey: header template NAME=VALUE, e.g. 'X-API-Key={secret}' (repeatable)")
	f.StringArrayVar(&metadata, "metadata", nil, "apikey: gRPC metadata template key=VALUE (repeatable; default: the headers, lowercased)")
	f.StringVar(&spec.Issuer, "issuer", "", "devicecode: OpenID issuer URL")
	f.StringVar(&spec.ClientID, "client-id", "", "devicecode: OAuth client id")
	f.StringVar(&spec.Login, "login", "", "oidc, devicecode: how to log in: auto, browser or device")
	f.StringSliceVar(&spec.Scopes, "scope", nil, "devicecode: scope (repeatable)")
	f.StringVar(&spec.Audience, "audience", "", "audience parameter (devicecode, client_credentials)")
	f.StringVar(&spec.TokenURL, "token-url", "", "token endpoint (devicecode without issuer; apikey client_credentials)")
	f.StringVar(&spec.Resource, "resource", "", "resource parameter (RFC 8707)")
	f.StringVar(&spec.Region, "region", "", "apikey sigv4: region, e.g. us-east-1")
	f.StringVar(&spec.Service, "service", "", "apikey sigv4: service name")
	f.StringVar(&spec.DateHeader, "date-header", "", "apikey sigv4: the API's own name for the signed date header")
	f.StringVar(&spec.AuthHeader, "auth-header", "", "apikey sigv4: the API's own name for the Authorization header")
	f.StringVar(&spec.DeviceAuthURL, "device-auth-url", "", "devicecode: device authorization endpoint, when not discovered")
	f.StringVar(&spec.RevocationURL, "revocation-url", "", "devicecode: RFC 7009 revocation endpoint, when not discovered")
	f.Var((*durationFlag)(&spec.RefreshBefore), "refresh-before", "refresh this long before expiry instead of at 75% of the lifetime")
	f.Var((*durationFlag)(&spec.MinValid), "min-valid", "default min_valid of requests for this profile")
	f.StringVar(&spec.Confirm, "confirm", "", "ask before each use: always, or once-per-exe (remembered for --confirm-window)")
	f.Var((*durationFlag)(&spec.ConfirmWindow), "confirm-window", "with --confirm once-per-exe: how long an approval lasts (default 10m)")
	f.Var((*durationFlag)(&spec.ConfirmTimeout), "confirm-timeout", "with --confirm: how long a question waits for an answer (default 30s)")
	f.StringVar(&spec.File, "file", "", "externaljwt: file holding the token")
	f.StringArrayVar(&spec.Command, "command", nil, "externaljwt: command argv, one --command per word")
	f.BoolVar(&noSecret, "no-secret", false, "do not read a secret (keep the stored one)")
	f.BoolVar(&withSecret, "secret", false, "read a secret for this profile (stdin or prompt)")
	return cmd
}

// providerNames are the credential kinds of --provider; apikeyModes the modes of apikey
// (apikey.New refuses others; a test keeps the list true).
var (
	providerNames = []string{apikey.Name, devicecode.Name, devicecode.OIDCName, externaljwt.Name}
	apikeyModes   = []string{"headers", "client_credentials", "sigv4", "command", "token_exchange"}
)

func newSetSecretCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "set-secret NAME",
		Short: "Store or replace a profile's secret, and change nothing else of it",
		Long: `Store or replace the secret of a profile that is defined already: an API secret, an
OAuth client secret. Hosts, key_id, headers and every other key stay as they are, and the
config file is not touched; the agent uses the new secret from the next request on.

The secret is read from stdin, or with a no-echo prompt when stdin is a terminal; it is
never taken from the command line. It may be at most 64 KiB.

    printf %s "$KEY" | authagent set-secret hub

Use it to rotate a key, or to store a secret again after a restart of an agent that keeps
secrets in memory. (` + "`authagent add`" + ` defines the whole profile anew.)`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			// Before the prompt: a typo in NAME should not cost typing the secret.
			if _, err := c.client.Profile(cmd.Context(), name); err != nil {
				return err
			}
			s, err := readSecret(fmt.Sprintf("Secret for %s: ", name), "authagent set-secret "+name)
			if err != nil {
				return err
			}
			if err := c.client.SetSecret(cmd.Context(), name, s); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "secret of %s stored\n", name)
			return nil
		},
	}
}

// durationFlag lets an ipc.Duration be a flag.
type durationFlag ipc.Duration

func (d *durationFlag) String() string     { return time.Duration(*d).String() }
func (d *durationFlag) Type() string       { return "duration" }
func (d *durationFlag) Set(s string) error { return (*ipc.Duration)(d).UnmarshalText([]byte(s)) }

func keyValues(flag string, items []string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(items))
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageError{fmt.Sprintf("%s %q: want NAME=VALUE", flag, it)}
		}
		m[strings.TrimSpace(k)] = v
	}
	return m, nil
}

// readSecret reads a secret with a no-echo prompt from a terminal, or else all of stdin.
// command is how the user ran it, for the message when nothing came.
func readSecret(prompt, command string) (string, error) {
	fd := int(os.Stdin.Fd())
	var b []byte
	var err error
	if term.IsTerminal(fd) {
		fmt.Fprint(os.Stderr, prompt)
		b, err = term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
	} else {
		// A little past the limit, for the line ending that is not part of the secret.
		r := bufio.NewReader(os.Stdin)
		b, err = io.ReadAll(io.LimitReader(r, agent.MaxSecretSize+3))
		if err == nil && len(b) > agent.MaxSecretSize+2 {
			rest, _ := io.Copy(io.Discard, io.LimitReader(r, 1<<30))
			return "", agent.CheckSecretSize(len(b) + int(rest))
		}
	}
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if err := agent.CheckSecretSize(len(s)); err != nil {
		return "", err
	}
	if s == "" {
		return "", fmt.Errorf("no secret given: pipe it on stdin (printf %%s \"$KEY\" | %s) or type it at the prompt", command)
	}
	return s, nil
}

func newRemoveCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a profile from the config and its secrets from the secret store",
		Long: `Remove a profile from the config file and its secrets from the secret store. The git
credential helper entries that ` + "`authagent git setup`" + ` wrote for its hosts go too, unless
another profile still lists the host.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := args[0]
			ps, err := c.client.Profiles(ctx)
			if err != nil {
				return err
			}
			if err := c.client.DeleteProfile(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "profile %s removed\n", name)
			gitsetup.RemoveOurs(os.Stderr, orphanHosts(ps, name))
			return nil
		},
	}
}

// orphanHosts are the hosts of profile name that no other profile in ps lists.
func orphanHosts(ps []ipc.Profile, name string) []string {
	others := map[string]bool{}
	var mine []string
	for _, p := range ps {
		if p.Name == name {
			mine = p.Hosts
			continue
		}
		for _, h := range p.Hosts {
			others[h] = true
		}
	}
	var out []string
	for _, h := range mine {
		if !others[h] {
			out = append(out, h)
		}
	}
	return out
}

func newListCmd(c *cli) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List profiles with their state and expiry (never a secret)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := c.client.Status(ctx)
			if err != nil {
				return err
			}
			ps, err := c.client.Profiles(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(struct {
					Profiles      []ipc.Profile   `json:"profiles"`
					SecretStore   ipc.SecretStore `json:"secret_store"`
					ConfigError   string          `json:"config_error,omitempty"`
					ConfigWarning string          `json:"config_warning,omitempty"`
				}{ps, st.SecretStore, st.ConfigError, st.ConfigWarning})
			}
			if w := st.SecretStore.Warning; w != "" {
				fmt.Fprintln(os.Stderr, "warning:", w)
			}
			printConfigProblems(os.Stderr, st)
			if len(ps) == 0 {
				fmt.Fprintln(os.Stderr, "no profiles; define one with `authagent add NAME --provider …`")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPROVIDER\tSTATE\tEXPIRES\tHOSTS")
			now := time.Now()
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.Provider, p.State, expiry(p.ExpiresAt, now), strings.Join(p.Hosts, ","))
			}
			tw.Flush()
			for _, p := range ps {
				if p.LastError != "" {
					fmt.Printf("%s: %s\n", p.Name, p.LastError)
				}
				if l := p.Login; l != nil {
					fmt.Printf("%s: log in at %s with code %s\n", p.Name, l.VerificationURI, l.UserCode)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// expiry renders an expiry for people: "in 41m", "expired 3m ago", "never".
func expiry(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	d := t.Sub(now).Round(time.Second)
	if d < 0 {
		return "expired " + (-d).String() + " ago"
	}
	return "in " + d.String()
}

func writeJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
