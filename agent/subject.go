package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/authagent/authagent/providers"
)

// A token exchange (apikey mode token_exchange) may trade another profile's token: its
// subject_profile. The agent lends providers two hooks for it (providers.Env.ProfileToken
// and ProfileChanged); nothing else of one profile is visible to another's provider.
//
// A fetch of the exchanging profile holds its own grant lock and waits for the subject
// profile's credential, which may fetch under that profile's lock: a chain of profiles
// waits down the chain and never back, so a chain that leads back to where it started (a
// → b → a) is refused instead of being waited for.

// profileToken is providers.Env.ProfileToken for the provider of profile from: the token
// of profile subject as a request for it would get it, with its default min_valid, allowed
// to go to sendTo (when not nil) by subject's hosts. Whatever only the user can fix (that
// profile needs a login, does not exist, has no such token, may not send it there, or the
// chain of subject_profile closes a cycle) is marked providers.ErrNeedsLogin.
func (a *Agent) profileToken(ctx context.Context, from, subject string, idToken bool, sendTo *url.URL) (string, time.Time, error) {
	if err := a.subjectCycle(from, subject); err != nil {
		return "", time.Time{}, providers.Mark(providers.ErrNeedsLogin, err)
	}
	get := a.Credential
	if idToken {
		get = a.IDToken
	}
	c, err := get(internalContext(ctx), subject, -1, sendTo)
	switch {
	case err == nil:
		return c.Token, c.ExpiresAt, nil
	case errors.Is(err, ErrForbidden):
		return "", time.Time{}, providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("profile %s may not send its token to %s, where %s trades it: add %q to the hosts of %s", subject, sendTo.Host, from, sendTo.Hostname(), subject))
	case errors.Is(err, ErrNeedsLogin), errors.Is(err, ErrUnknownProfile), errors.Is(err, ErrBadRequest):
		return "", time.Time{}, providers.Mark(providers.ErrNeedsLogin, err)
	}
	return "", time.Time{}, err
}

// subjectCycle refuses a subject that leads back to from through the subject_profile of
// the profiles served now: from → subject → … → from.
func (a *Agent) subjectCycle(from, subject string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	chain := []string{from}
	for next := subject; next != ""; {
		if slices.Contains(chain, next) {
			return fmt.Errorf("subject_profile makes a cycle: %s; no profile can trade a token that comes from itself, so change subject_profile in one of them", strings.Join(append(chain, next), " → "))
		}
		chain = append(chain, next)
		p := a.profiles.get(next)
		if p == nil {
			break
		}
		next = p.cfg.SubjectProfile
	}
	return nil
}

// profileChanged is providers.Env.ProfileChanged: it calls changed for every event that
// shows profile name with a usable credential, until ctx ends, and once at the start when
// it is usable already. A subscription the bus drops for falling behind is renewed, with
// one call of changed for what may have been missed.
func (a *Agent) profileChanged(ctx context.Context, name string, changed func()) {
	for first := true; ctx.Err() == nil; first = false {
		sub := a.Subscribe()
		switch {
		case !first:
			changed()
		case a.usableNow(name):
			// The profile may have become usable before this subscription began (the
			// watch starts on a goroutine of its own): its event came too early to be seen.
			changed()
		}
		a.watchProfile(ctx, sub, name, changed)
		sub.Close()
		if a.ctx.Err() != nil {
			return // the agent is closed: its bus with it
		}
	}
}

// watchProfile runs profileChanged's loop on one subscription, until ctx ends or the bus
// drops it.
func (a *Agent) watchProfile(ctx context.Context, sub *Subscription, name string, changed func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.C:
			if !ok {
				return
			}
			if e.Type != EventRemoved && e.Profile.Name == name && e.Profile.State == StateValid {
				changed()
			}
		}
	}
}

// usableNow reports whether profile name is served and valid at this moment.
func (a *Agent) usableNow(name string) bool {
	info, err := a.Profile(name)
	return err == nil && info.State == StateValid
}
