package apikey

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
	"testing/iotest"
)

func TestGenerateKey(t *testing.T) {
	const n = 1000
	seen := map[string]bool{}
	idCount := map[rune]int{}
	secretCount := map[rune]int{}
	for range n {
		id, secret, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 24 || len(secret) != 64 {
			t.Fatalf("lengths %d, %d: want 24, 64", len(id), len(secret))
		}
		for _, c := range id {
			if !strings.ContainsRune(idAlphabet, c) {
				t.Fatalf("id %q has %q, not in [0-9A-Za-z]", id, c)
			}
			idCount[c]++
		}
		for _, c := range secret {
			if !strings.ContainsRune(secretAlphabet, c) {
				t.Fatalf("secret has %q, not in [0-9A-Za-z-._~]", c)
			}
			secretCount[c]++
		}
		if seen[id] || seen[secret] {
			t.Fatalf("a value repeated within %d keys", n)
		}
		seen[id], seen[secret] = true, true
	}
	for _, c := range idAlphabet {
		if idCount[c] == 0 {
			t.Errorf("%q never appeared in %d ids", c, n)
		}
	}
	for _, c := range secretAlphabet {
		if secretCount[c] == 0 {
			t.Errorf("%q never appeared in %d secrets", c, n)
		}
	}
}

// TestRandomStringUniform is a chi-square test against the uniform distribution. The bound,
// three times the degrees of freedom plus 30, is crossed by chance far less than once in
// 10^15 runs; a modulo bias (for 62 characters, bytes 248..255 landing on '0'..'7' once more)
// scores above 1,000 with this many draws.
func TestRandomStringUniform(t *testing.T) {
	const draws = 200_000
	for _, alphabet := range []string{idAlphabet, secretAlphabet} {
		s, err := randomString(rand.Reader, draws, alphabet)
		if err != nil {
			t.Fatal(err)
		}
		count := map[rune]int{}
		for _, c := range s {
			count[c]++
		}
		want := float64(draws) / float64(len(alphabet))
		chi2 := 0.0
		for _, c := range alphabet {
			d := float64(count[c]) - want
			chi2 += d * d / want
		}
		if df := float64(len(alphabet) - 1); chi2 > 3*df+30 {
			t.Errorf("%d characters: chi-square %.1f with %v degrees of freedom: not uniform", len(alphabet), chi2, df)
		}
	}
}

func TestRandomStringRejectsBiasedBytes(t *testing.T) {
	// For 62 characters, bytes 248..255 would map onto '0'..'7' a fifth time: they must be
	// dropped, not folded in.
	stream := append(bytes.Repeat([]byte{248, 255}, 20), 0, 61, 62, 123, 247)
	r := bytes.NewReader(append(stream, make([]byte, 100)...))
	got, err := randomString(r, 5, idAlphabet)
	if err != nil {
		t.Fatal(err)
	}
	if want := "0z0zz"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := randomString(iotest.ErrReader(iotest.ErrTimeout), 5, idAlphabet); err == nil {
		t.Error("no error from a failing random source")
	}
}
