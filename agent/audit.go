package agent

import (
	"context"
	"errors"
	"net/url"

	"github.com/authagent/authagent/agent/audit"
)

// Auditor records what callers did with profiles, one entry per operation (package audit
// writes them to a file). Record must neither block for long nor fail the operation: a
// write that fails is the Auditor's to report.
type Auditor interface {
	Record(audit.Entry)
}

// audit records one operation on profile, done for the caller ctx carries, with err its
// outcome. Only target's host goes in, never its path or query. The entry names the
// profile only when it is one: the operation worked, or a profile of that name is defined
// when the entry is written. A caller may have passed anything as a name, even a token
// (GET /v1/profiles/ghp_…/credential), and an unknown_profile entry must not keep it.
// a.mu must not be held.
func (a *Agent) audit(ctx context.Context, op, profile string, target *url.URL, err error) {
	if a.opts.Audit == nil {
		return
	}
	if !validProfileName(profile) || errors.Is(err, ErrUnknownProfile) || err != nil && !a.defined(profile) {
		profile = ""
	}
	e := audit.Entry{Time: a.clock.Now().UTC(), Profile: profile, Op: op, Result: auditResult(err)}
	if target != nil {
		e.Host = target.Host
	}
	if c := CallerFrom(ctx); c != nil {
		e.Exe, e.PID, e.ParentExe, e.ParentPID = c.Exe, c.PID, c.ParentExe, c.ParentPID
	}
	a.opts.Audit.Record(e)
}

// defined reports whether a profile of that name is served.
func (a *Agent) defined(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.profiles.get(name) != nil
}

// AuditFailure records a request the socket server failed before it reached an agent
// call that records it (kube-credential's lookup of a profile's kube_token): op is one of
// the audit.Op constants, err (not nil) the failure, profile and target as the request
// named them (target's host only goes in; profile only when it is a defined profile).
func (a *Agent) AuditFailure(ctx context.Context, op, profile string, target *url.URL, err error) {
	a.audit(ctx, op, profile, target, err)
}

// AuditRefused records a connection the socket server refused because it came from
// another user: pid as the kernel reported it (0: unknown), uid nil when the kernel did
// not say. Result is "forbidden".
func (a *Agent) AuditRefused(pid int, uid *int) {
	if a.opts.Audit == nil {
		return
	}
	a.opts.Audit.Record(audit.Entry{Time: a.clock.Now().UTC(), Op: audit.OpRefused, Result: "forbidden", PID: pid, UID: uid})
}

// auditResult is audit.ResultOK, or the socket API's error code for err: the code
// ipc/server's apiError answers the client with (ipc/server's audit tests compare the
// two), and "cancelled" for a caller that left.
func auditResult(err error) string {
	if err == nil {
		return audit.ResultOK
	}
	for _, m := range []struct {
		target error
		code   string
	}{
		{ErrConfirmRequired, "confirm_required"}, // apiError too looks for it first
		{ErrTooLarge, "too_large"},
		{ErrUnknownProfile, "unknown_profile"},
		{ErrNoProfile, "no_profile"},
		{ErrBadRequest, "bad_request"},
		{ErrDenied, "denied"},
		{ErrForbidden, "forbidden"},
		{ErrNeedsLogin, "needs_login"},
		{ErrLoginPending, "login_pending"},
		{ErrProvider, "provider_error"},
		{ErrUnavailable, "unavailable"},
		{context.DeadlineExceeded, "unavailable"},
		{context.Canceled, "cancelled"},
	} {
		if errors.Is(err, m.target) {
			return m.code
		}
	}
	return "internal"
}

// parsedURL is raw parsed, or nil when it is not a URL.
func parsedURL(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	return u
}
