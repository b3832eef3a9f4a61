package credhelper

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxGitLine is git's limit on one line of the credential protocol.
const MaxGitLine = 65535

// GitRequest is what git sends a credential helper on stdin.
type GitRequest struct {
	Protocol     string
	Host         string // with ":port" when git sent one
	Path         string // only when credential.useHttpPath is set
	Username     string
	Password     string   // with erase: the token a server refused
	Credential   string   // with erase after an authtype answer: the same
	Capabilities []string // capability[] lines, e.g. "authtype"
}

// ReadGitRequest reads key=value lines up to a blank line or the end of input. Unknown
// keys are ignored, as the protocol asks.
func ReadGitRequest(r io.Reader) (*GitRequest, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), MaxGitLine+2)
	req := &GitRequest{}
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("git credential input: line without '=': %.40q", line)
		}
		switch k {
		case "protocol":
			req.Protocol = v
		case "host":
			req.Host = v
		case "path":
			req.Path = v
		case "username":
			req.Username = v
		case "password":
			req.Password = v
		case "credential":
			req.Credential = v
		case "capability[]":
			req.Capabilities = append(req.Capabilities, v)
		case "url":
			// git sends url= only when a helper's config asked for it; split it like git.
			if u, err := url.Parse(v); err == nil {
				req.Protocol, req.Host, req.Path = u.Scheme, u.Host, strings.TrimPrefix(u.Path, "/")
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("git credential input: a line is longer than %d bytes", MaxGitLine)
		}
		return nil, fmt.Errorf("git credential input: %w", err)
	}
	return req, nil
}

// URL is the request as a URL, for choosing a profile by host.
func (r *GitRequest) URL() string {
	u := url.URL{Scheme: r.Protocol, Host: r.Host, Path: "/" + r.Path}
	return u.String()
}

// Refused is the token git reports a server refused, with erase: the password, or the
// credential of an authtype answer; "" when git sent neither.
func (r *GitRequest) Refused() string {
	if r.Password != "" {
		return r.Password
	}
	return r.Credential
}

// Has reports whether git announced a capability.
func (r *GitRequest) Has(capability string) bool {
	for _, c := range r.Capabilities {
		if c == capability {
			return true
		}
	}
	return false
}

// GitAnswer is what the helper tells git for a get.
type GitAnswer struct {
	Username  string
	Token     string
	TokenType string    // "Bearer" unless the credential says otherwise
	ExpiresAt time.Time // zero: no expiry known
}

// WriteGitAnswer writes the answer to a get. When git announced capability[]=authtype
// (git 2.46+) and the token is a bearer token, it goes as a ready-made Authorization
// credential that git must not store (ephemeral); otherwise as username and password,
// for Basic auth.
func WriteGitAnswer(w io.Writer, req *GitRequest, a GitAnswer) error {
	var b strings.Builder
	for _, v := range []string{a.Username, a.Token, a.TokenType} {
		if strings.ContainsAny(v, "\n\r\x00") {
			return errors.New("git credential answer: a value holds a line break or NUL")
		}
	}
	if req.Has("authtype") && (a.TokenType == "" || strings.EqualFold(a.TokenType, "bearer")) {
		b.WriteString("capability[]=authtype\n")
		fmt.Fprintf(&b, "authtype=Bearer\ncredential=%s\nephemeral=true\n", a.Token)
	} else {
		fmt.Fprintf(&b, "username=%s\npassword=%s\n", a.Username, a.Token)
	}
	if !a.ExpiresAt.IsZero() {
		fmt.Fprintf(&b, "password_expiry_utc=%s\n", strconv.FormatInt(a.ExpiresAt.Unix(), 10))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
