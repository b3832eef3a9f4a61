package providers

import "testing"

func TestScrubKnown(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		known []string
		want  string
	}{
		{"16 characters", "denied Zq7-canary-16chr!", []string{"Zq7-canary-16chr"}, "denied [redacted]!"},
		{"5 characters inside a word", "keyabcdeX", []string{"abcde"}, "key[redacted]X"},
		{"longest first", "tok abcdefgh", []string{"abcd", "abcdefgh"}, "tok [redacted]"},
		{"every occurrence", "a1b2c a1b2c", []string{"a1b2c"}, "[redacted] [redacted]"},
		{"short value alone", "pin 42 refused", []string{"42"}, "pin [redacted] refused"},
		{"short value inside a word", "failed at line 420", []string{"a", "42"}, "failed at line 420"},
		{"short value at the ends", "a: x a", []string{"a"}, "[redacted]: x [redacted]"},
		{"empty value ignored", "nothing", []string{""}, "nothing"},
		{"a replacement is not searched again", "redacted", []string{"redacted", "[redacted]"}, "[redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scrubKnown(tt.in, tt.known); got != tt.want {
				t.Errorf("scrubKnown(%q, %q) = %q, want %q", tt.in, tt.known, got, tt.want)
			}
		})
	}
}

func TestScrub(t *testing.T) {
	jwtTok := testJWT(t, 1700000000)
	tests := []struct {
		in, want string
	}{
		{"denied: " + jwtTok, "denied: [redacted]"},
		{"Authorization: Bearer " + jwtTok + ".", "Authorization: Bearer [redacted]."},
		{"key=0123456789abcdef0123456789abcdef!", "key=[redacted]!"},
		{"secret dGhpcyBpcyBhIHNlY3JldCB2YWx1ZQ== leaked", "secret [redacted] leaked"},
		{"ghp_AbCdEfGhIjKlMnOpQrStUvWxYz012345", "[redacted]"},
		{"12345678901234567890123", "[redacted]"},
		// Words, hosts and paths stay readable.
		{"lookup vault.example.com: no such host", "lookup vault.example.com: no such host"},
		{"exec /usr/local/bin/kubectl-oidc_login: permission denied", "exec /usr/local/bin/kubectl-oidc_login: permission denied"},
		{"could not read the configuration_file_for_profile", "could not read the configuration_file_for_profile"},
		{"short abc123", "short abc123"},
	}
	for _, tt := range tests {
		if got := scrubShaped(tt.in); got != tt.want {
			t.Errorf("scrubShaped(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
