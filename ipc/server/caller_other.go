//go:build !linux

package server

import (
	"github.com/authagent/authagent/agent"
	"github.com/authagent/authagent/ipc/wire"
)

// callerOf describes the peer by the pid and uid the kernel gave; this OS has no /proc to
// read its executable from, so Exe, Dev, Ino and the parent stay unknown. (macOS could
// name the executable with proc_pidpath, which needs cgo or libproc; not done yet.)
func callerOf(p wire.Peer) *agent.Caller {
	return &agent.Caller{PID: p.PID, UID: p.UID}
}
