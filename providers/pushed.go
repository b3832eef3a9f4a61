package providers

import "time"

// PushedToken is how a token pushed into a profile (externaljwt without command or file,
// an apikey token exchange with subject_token = "pushed") is kept in the secret store under
// PushedTokenKey: JSON {"token","expires_at"?}. One format for every kind, so a profile
// redefined from one to the other reads what was pushed before.
type PushedToken struct {
	Token     string     `json:"token"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}
