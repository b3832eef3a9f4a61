package providers

import (
	"errors"
	"fmt"
	"time"
)

// MinLife is the least validity a credential must have when it arrives; one with less (or
// already expired) is refused by CheckArrival.
const MinLife = 2 * time.Second

// CheckArrival refuses a credential that expires at expiresAt (zero: never) if it is
// expired, or has less than MinLife left, when it arrives at now: serving it would fail, and
// fetching again at once would storm its source. The agent counts such a fetch as failed
// and retries with backoff. meta, when not nil, holds the answer's Date header; the error
// then says by how much this machine's clock differs from the server's.
func CheckArrival(expiresAt, now time.Time, meta *ResponseMeta) error {
	if expiresAt.IsZero() {
		return nil
	}
	left := expiresAt.Sub(now)
	if left >= MinLife {
		return nil
	}
	var msg string
	if left <= 0 {
		msg = fmt.Sprintf("the token was already expired when it arrived: it expired at %s, %s before it was received",
			expiresAt.UTC().Format(time.RFC3339), roundSkew(-left))
	} else {
		msg = fmt.Sprintf("the token expires %s after it arrived (at %s), too soon to be used; the agent needs at least %s",
			left.Round(100*time.Millisecond), expiresAt.UTC().Format(time.RFC3339), MinLife)
	}
	if skew, ok := meta.ClockSkew(); ok {
		switch {
		case skew >= 2*time.Second:
			msg += fmt.Sprintf("; this machine's clock is %s ahead of the server's (by its Date header): set the clock right, e.g. `timedatectl set-ntp true`", roundSkew(skew))
		case skew <= -2*time.Second:
			msg += fmt.Sprintf("; this machine's clock is %s behind the server's (by its Date header): set the clock right, e.g. `timedatectl set-ntp true`", roundSkew(-skew))
		default:
			msg += "; this machine's clock agrees with the server's (by its Date header), so the server issues tokens that are expired or nearly so: check the access token lifetime it is configured with"
		}
	}
	return errors.New(msg)
}

func roundSkew(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}
