package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/authagent/authagent/providers"
)

const (
	// keyringProbeAccount is read, never written, to see whether the keyring answers.
	keyringProbeAccount = "authagent-probe"

	// keyringProbeGrace is how long OpenSecretStore waits for the probe before it returns
	// a store that is still checking: a keyring that answers at once is never reported as
	// pending, so status and the tray do not flash a warning at every start.
	keyringProbeGrace = time.Second
)

// OpenSecretStore opens the store named by the config's secret_store: "memory", or
// "keyring" (the default, also for ""). It does not wait for a keyring that is slow to
// answer (one with an unlock prompt nobody completes): after a moment it returns a store
// whose Info() says the keyring is being checked while a probe goes on until the keyring
// answers, times out, or ctx ends. Calls made meanwhile wait for the probe. When no keyring
// can be reached the store falls back to memory, with an Info().Warning that tells the
// user; every warning is logged once.
func OpenSecretStore(ctx context.Context, kind string, log *slog.Logger) (SecretStore, error) {
	ks := NewKeyringStore()
	ks.Log = log
	return openSecretStore(ctx, kind, log, ks, keyringProbeGrace)
}

func openSecretStore(ctx context.Context, kind string, log *slog.Logger, ks *KeyringStore, grace time.Duration) (SecretStore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch kind {
	case "memory":
		return NewMemoryStore(), nil
	case "keyring", "":
	default:
		return nil, fmt.Errorf("unknown secret_store %q: use \"keyring\" or \"memory\"", kind)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open secret store: %w", context.Cause(ctx))
	}
	p := probeKeyring(ctx, log, ks)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.ready:
	case <-t.C:
	case <-ctx.Done():
	}
	return p, nil
}

// chooseStore probes the keyring once and returns the store the agent runs with: ks, with
// a warning when it did not answer, or a MemoryStore when there is no keyring at all.
func chooseStore(ctx context.Context, log *slog.Logger, ks *KeyringStore) (SecretStore, error) {
	_, err := ks.Get(ctx, keyringProbeAccount)
	if err == nil || errors.Is(err, providers.ErrSecretNotFound) {
		log.Debug("the OS keyring answered")
		go ks.sweepAtStart(ctx, log)
		return ks, nil
	}
	if errors.Is(err, ErrKeyringTimeout) || strings.Contains(err.Error(), "failed to unlock") {
		// A keyring that answers slowly is there but locked (an unlock prompt is waiting).
		// Falling back to memory would lose every secret stored from now on; keep the
		// keyring and let each call say what is wrong until it is unlocked.
		ks.warning = "the OS keyring did not answer at start; it may be locked. Unlock it (log in to " +
			"the desktop session, or run `gnome-keyring-daemon --unlock`); until then requests " +
			"that need a stored secret fail"
		log.Warn(ks.warning, "err", err)
		return ks, nil
	}
	if ctx.Err() != nil {
		// The caller gave up (the agent is stopping); that says nothing about the keyring.
		return nil, fmt.Errorf("open secret store: %w", err)
	}
	m := NewMemoryStore()
	m.warning = keyringFallbackWarning()
	log.Warn(m.warning, "err", err)
	return m, nil
}

func keyringFallbackWarning() string {
	const lost = "the OS keyring is not available, so secrets are kept in memory only and will NOT " +
		"survive a restart of the agent: you will have to log in and add API secrets again. "
	const accept = "; or set secret_store = \"memory\" in config.toml to accept this and silence the warning"
	switch runtime.GOOS {
	case "darwin":
		return lost + "To fix it, make sure your login keychain exists and is unlocked" + accept
	case "windows":
		return lost + "To fix it, make sure Windows Credential Manager is available to your user" + accept
	default:
		return lost + "To fix it, install and run a Secret Service such as gnome-keyring in your D-Bus " +
			"session (for example `apt-get install gnome-keyring`, then log in to a desktop session, " +
			"or start the agent under `dbus-run-session`)" + accept
	}
}
