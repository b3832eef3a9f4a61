package agent

import (
	"context"
)

// SecretStore keeps secrets for all profiles. Accounts are "PROFILE/KEY" (for example
// "work/refresh_token"); the keyring store files them under service "authagent".
// Get returns an error wrapping providers.ErrSecretNotFound when nothing is stored;
// Delete of a missing account is not an error. Every call honours ctx.
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
