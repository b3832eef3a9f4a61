package agent

import (
	"context"
	"fmt"

	"github.com/authagent/authagent/providers"
)

// SecretStore keeps secrets for all profiles. Accounts are "PROFILE/KEY" (for example
// "work/refresh_token"); the keyring store files them under service "authagent".
// Get returns an error wrapping providers.ErrSecretNotFound when nothing is stored;
// Delete of a missing account is not an error. Set refuses a value longer than
// MaxSecretSize with an error wrapping ErrTooLarge before it writes anything. Every call
// honours ctx.
type SecretStore interface {
	Get(ctx context.Context, account string) (string, error)
	Set(ctx context.Context, account, value string) error
	Delete(ctx context.Context, account string) error
	Info() StoreInfo
}

// StoreInfo says what kind of store the agent runs with, for status and list.
type StoreInfo struct {
	Kind       string // "keyring" or "memory"
	Persistent bool   // secrets survive an agent restart
	Warning    string // set when the agent fell back to a store the user did not choose
}

// MaxSecretSize is the largest secret, in bytes, that a SecretStore takes. The keyring
// splits a long secret into 2 KiB entries, and gnome-keyring slows down with every entry
// it holds: measured on a private session bus, a 64 KiB secret is written in about 0.3 s,
// 256 KiB in about 2 s and 1 MiB in about 30 s, past DefaultKeyringTimeout. API keys,
// refresh tokens and JWTs are far smaller than 64 KiB.
const MaxSecretSize = 64 << 10

// CheckSecretSize returns nil for a secret of n bytes that a SecretStore takes, and else
// an error wrapping ErrTooLarge that gives both sizes.
func CheckSecretSize(n int) error {
	if n <= MaxSecretSize {
		return nil
	}
	return providers.Mark(ErrTooLarge, fmt.Errorf("secret is %d bytes; the limit is %d bytes (%d KiB)", n, MaxSecretSize, MaxSecretSize>>10))
}
