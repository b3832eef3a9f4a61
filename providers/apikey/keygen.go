package apikey

import (
	"crypto/rand"
	"fmt"
	"io"
)

// Key alphabets. The id is plain alphanumerics so it survives any form field or log; the
// secret adds the RFC 3986 unreserved punctuation, so it needs no escaping in a URL, a header
// or a TOML string.
const (
	idAlphabet     = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	secretAlphabet = idAlphabet + "-._~"

	idLen     = 24 // 24 × log2(62) ≈ 143 bits
	secretLen = 64 // 64 × log2(66) ≈ 387 bits
)

// GenerateKey makes a new API key for the server side of an API: an id of 24 characters from
// [0-9A-Za-z] and a secret of 64 characters from [0-9A-Za-z-._~], each character drawn
// uniformly with crypto/rand.
func GenerateKey() (id, secret string, err error) {
	if id, err = randomString(rand.Reader, idLen, idAlphabet); err != nil {
		return "", "", err
	}
	if secret, err = randomString(rand.Reader, secretLen, secretAlphabet); err != nil {
		return "", "", err
	}
	return id, secret, nil
}

// randomString draws n characters from alphabet (at most 256 of them), each uniformly: a
// random byte is used only when it falls below the largest multiple of len(alphabet) that
// fits in a byte, so the modulo favours no character.
func randomString(r io.Reader, n int, alphabet string) (string, error) {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("read random bytes: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}
