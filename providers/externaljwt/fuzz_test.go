package externaljwt

import (
	"strings"
	"testing"
	"time"

	"github.com/authagent/authagent/providers/tokencmd"
)

// FuzzParseAnswer: whatever a command prints or a token file holds, the parser never
// panics, never echoes the input in its error (it may hold a secret), and a token it
// accepts fits in an Authorization header.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{
		"eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDAwMDB9.sig\n",
		`{"token":"abc","expires_at":"2026-01-01T00:00:00Z"}`,
		`{"access_token":"abc","expires_in":3600}`,
		`{"access_token":"abc","expires_in":"1e9"}`,
		`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"abc","expirationTimestamp":"2026-01-01T00:00:00Z"}}`,
		`{"error":"denied"}`,
		"two\nlines",
		"\ufeffbom-token",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		now := time.Unix(1700000000, 0)
		a, err := tokencmd.ParseAnswer(in, now, "output")
		if err != nil {
			if s := strings.TrimSpace(string(in)); len(s) >= 12 && !strings.HasPrefix(s, "{") && strings.Contains(err.Error(), s) {
				t.Fatalf("the error echoes the input: %v", err)
			}
			return
		}
		if tokencmd.CheckToken(a.Token) != nil {
			t.Fatalf("accepted a token that cannot be sent: %q", a.Token)
		}
	})
}
