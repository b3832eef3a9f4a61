package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/authagent/authagent/agent/audit"
	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/ipc/wire"
)

// AuditReader reads the audit log back (an *audit.Log).
type AuditReader interface {
	Read(audit.Filter) ([]audit.Entry, error)
}

// auditLog answers GET /v1/audit?profile=&since=&limit= with the newest entries of the
// audit log that match, oldest first: limit (default 100, at most 10000) of them, of one
// profile, at or after since (RFC 3339).
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) {
	if s.Audit == nil {
		writeError(w, &ipc.Error{Status: http.StatusServiceUnavailable, Code: ipc.CodeUnavailable,
			Message: "this agent keeps no audit log (its log at start said why); restart it with `authagent stop` and `eval \"$(authagent start)\"`"})
		return
	}
	q := r.URL.Query()
	f := audit.Filter{Profile: q.Get("profile"), Limit: wire.AuditDefaultLimit}
	if raw := q.Get("since"); raw != "" {
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			writeError(w, &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest,
				Message: fmt.Sprintf("since must be an RFC 3339 time like 2026-01-02T15:04:05Z, got %q", raw)})
			return
		}
		f.Since = t
	}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > wire.AuditMaxLimit {
			writeError(w, &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest,
				Message: fmt.Sprintf("limit must be a whole number from 1 to %d, got %q", wire.AuditMaxLimit, raw)})
			return
		}
		f.Limit = n
	}
	entries, err := s.Audit.Read(f)
	if err != nil {
		s.log().Error("cannot read the audit log", "error", err)
		writeError(w, &ipc.Error{Status: http.StatusServiceUnavailable, Code: ipc.CodeUnavailable, Message: err.Error()})
		return
	}
	out := wire.AuditLog{Entries: make([]wire.AuditEntry, 0, len(entries))}
	for _, e := range entries {
		out.Entries = append(out.Entries, wire.AuditEntry{
			Time: e.Time.UTC(), Profile: e.Profile, Op: e.Op, Host: e.Host, Result: e.Result,
			Exe: e.Exe, PID: e.PID, ParentExe: e.ParentExe, ParentPID: e.ParentPID, UID: e.UID,
		})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// auditKube records a kube-credential request that failed at the lookup of the profile's
// kube_token, before any agent call that records it: op credential, the profile (left
// out unless defined) and the URL's host.
func (s *Server) auditKube(r *http.Request, profile string, target *url.URL, err error) {
	if s.Agent != nil {
		s.Agent.AuditFailure(r.Context(), audit.OpCredential, profile, target, err)
	}
}

// refusedEvery bounds the audit entries for refused connections: one per uid per
// refusedEvery, so that another user cannot flood the log and rotate its history away.
const refusedEvery = time.Minute

// refusals remembers when each uid's refused connection was last recorded.
type refusals struct {
	mu   sync.Mutex
	last map[int]time.Time // by uid; -1: unknown
}

// auditRefused records a connection from another user (op refused, its pid and uid), at
// most once per uid per refusedEvery.
func (s *Server) auditRefused(p wire.Peer) {
	if s.Agent == nil {
		return
	}
	key, uid := -1, (*int)(nil)
	if p.Known {
		key, uid = p.UID, &p.UID
	}
	now := time.Now()
	s.refused.mu.Lock()
	if s.refused.last == nil || len(s.refused.last) >= 64 {
		s.refused.last = map[int]time.Time{}
	}
	t, seen := s.refused.last[key]
	if !seen || now.Sub(t) >= refusedEvery {
		s.refused.last[key] = now
	}
	s.refused.mu.Unlock()
	if seen && now.Sub(t) < refusedEvery {
		return
	}
	s.Agent.AuditRefused(p.PID, uid)
}
