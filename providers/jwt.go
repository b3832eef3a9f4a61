package providers

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// maxExp is the last second of year 9999, the latest exp claim JWTExpiry takes.
const maxExp = 253402300799

// JWTExpiry reads the exp claim of a JWT without verifying its signature: it is only used
// to decide when to fetch a new token, never to trust one. It reports false when token is
// not a JWT or has no exp.
func JWTExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	f, err := claims.Exp.Float64()
	if err != nil || f <= 0 || f > maxExp {
		return time.Time{}, false // beyond maxExp a float64 no longer fits time.Unix's int64
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), true
}
