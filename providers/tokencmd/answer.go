package tokencmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// MaxAnswer caps what is read from a command's stdout or a token file, in bytes. Tokens
// are a few KiB at most; anything this large is not an answer.
const MaxAnswer = 1 << 20

// Answer is a token and, when the source said, its expiry (zero: it did not).
type Answer struct {
	Token     string
	ExpiresAt time.Time
}

// Kubernetes client authentication API versions an ExecCredential may have.
var execCredentialVersions = map[string]bool{
	"client.authentication.k8s.io/v1":      true,
	"client.authentication.k8s.io/v1beta1": true,
}

// ParseAnswer reads what a command printed or a file holds: one line with a raw token
// (a JWT or any opaque token), JSON {"token","expires_at"} (also {"access_token",
// "expires_in"} as OAuth token endpoints answer), or a Kubernetes ExecCredential. An
// expires_in counts from now. noun names the input in errors ("output", "content"). No
// error contains the input.
func ParseAnswer(b []byte, now time.Time, noun string) (Answer, error) {
	s := strings.TrimSpace(strings.TrimPrefix(string(b), "\ufeff"))
	if s == "" {
		return Answer{}, fmt.Errorf("%s is empty; want a token or JSON", noun)
	}
	if s[0] == '{' {
		return parseJSON([]byte(s), now, noun)
	}
	if n := strings.Count(s, "\n") + 1; n > 1 {
		return Answer{}, fmt.Errorf("%s has %d lines; want one token, or JSON (%s not shown: it may hold a secret)", noun, n, noun)
	}
	if CheckToken(s) != nil {
		return Answer{}, fmt.Errorf("%s is neither a token nor JSON (%s not shown: it may hold a secret)", noun, noun)
	}
	return Answer{Token: s}, nil
}

func parseJSON(b []byte, now time.Time, noun string) (Answer, error) {
	var v struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Status     *struct {
			Token               string `json:"token"`
			ExpirationTimestamp string `json:"expirationTimestamp"`
		} `json:"status"`
		Token       string      `json:"token"`
		AccessToken string      `json:"access_token"`
		ExpiresAt   string      `json:"expires_at"`
		ExpiresIn   json.Number `json:"expires_in"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return Answer{}, fmt.Errorf("%s is not valid JSON (syntax error at byte %d)", noun, syn.Offset)
		case errors.As(err, &typ):
			return Answer{}, fmt.Errorf("%s: JSON field %q is a %s, want a %s", noun, typ.Field, typ.Value, typ.Type)
		}
		return Answer{}, fmt.Errorf("%s is not valid JSON", noun)
	}
	var a Answer
	var expField, exp string
	switch v.Kind {
	case "ExecCredential":
		if !execCredentialVersions[v.APIVersion] {
			return Answer{}, fmt.Errorf("%s: ExecCredential apiVersion %q is not supported; want client.authentication.k8s.io/v1 or v1beta1", noun, v.APIVersion)
		}
		if v.Status == nil || v.Status.Token == "" {
			return Answer{}, fmt.Errorf("%s: ExecCredential has no status.token (client certificates are not supported)", noun)
		}
		a.Token = v.Status.Token
		expField, exp = "status.expirationTimestamp", v.Status.ExpirationTimestamp
	case "":
		a.Token = v.Token
		if a.Token == "" {
			a.Token = v.AccessToken
		}
		if a.Token == "" {
			return Answer{}, fmt.Errorf(`%s: JSON has no "token"; want {"token": …, "expires_at": "2006-01-02T15:04:05Z"}`, noun)
		}
		expField, exp = "expires_at", v.ExpiresAt
		if exp == "" && v.ExpiresIn != "" {
			secs, err := v.ExpiresIn.Float64()
			if err != nil {
				return Answer{}, fmt.Errorf("%s: expires_in %q is not a number of seconds", noun, v.ExpiresIn)
			}
			a.ExpiresAt = now.Round(0).Add(time.Duration(secs * float64(time.Second)))
		}
	default:
		return Answer{}, fmt.Errorf(`%s: JSON of kind %q is not supported; want {"token": …, "expires_at": …} or an ExecCredential`, noun, v.Kind)
	}
	a.Token = strings.TrimSpace(a.Token)
	if err := CheckToken(a.Token); err != nil {
		return Answer{}, fmt.Errorf("%s: the JSON's token %w", noun, err)
	}
	if exp != "" {
		t, err := time.Parse(time.RFC3339, exp)
		if err != nil {
			return Answer{}, fmt.Errorf("%s: %s %q is not an RFC 3339 time like 2006-01-02T15:04:05Z", noun, expField, exp)
		}
		a.ExpiresAt = t
	}
	return a, nil
}

// CheckToken accepts one non-empty line of visible ASCII without spaces: what fits in an
// Authorization header as a bearer token. Its errors finish "the token …".
func CheckToken(tok string) error {
	if tok == "" {
		return errors.New("is empty")
	}
	for i := 0; i < len(tok); i++ {
		switch c := tok[i]; {
		case c == '\n' || c == '\r':
			return errors.New("is more than one line")
		case c <= ' ' || c >= 0x7f:
			return errors.New("has spaces or characters that cannot go in an HTTP header")
		}
	}
	return nil
}

// ReadFile reads a token file, refusing one too large to be a token (over MaxAnswer).
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read token file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("read token file: %w", err)
	}
	if len(b) > MaxAnswer {
		return nil, fmt.Errorf("token file %s is larger than %d bytes; want one token or JSON", path, MaxAnswer)
	}
	return b, nil
}
