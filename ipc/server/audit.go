package server

import (
	"fmt"
	"net/http"
	"strconv"
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
			Exe: e.Exe, PID: e.PID, ParentExe: e.ParentExe, ParentPID: e.ParentPID,
		})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}
