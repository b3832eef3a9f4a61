package providers

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestJWTExpiry(t *testing.T) {
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	hdr := seg(`{"alg":"none"}`)
	for _, tc := range []struct {
		name  string
		token string
		want  time.Time
		ok    bool
	}{
		{"exp", hdr + "." + seg(`{"exp":1700000000}`) + ".sig", time.Unix(1700000000, 0).UTC(), true},
		{"padded", hdr + "." + seg(`{"exp":1700000000}`) + "==.sig", time.Unix(1700000000, 0).UTC(), true},
		{"no exp", hdr + "." + seg(`{"sub":"a"}`) + ".sig", time.Time{}, false},
		{"opaque", "abcdef", time.Time{}, false},
		{"garbage payload", hdr + ".!!!.sig", time.Time{}, false},
		{"exp not a number", hdr + "." + seg(`{"exp":"soon"}`) + ".sig", time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := JWTExpiry(tc.token)
			if ok != tc.ok || !got.Equal(tc.want) {
				t.Errorf("JWTExpiry = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
