package agent

import "context"

// Caller is the process on the other end of a request, as the kernel named it when it
// connected (SO_PEERCRED: pid and uid) and as /proc showed it at that moment. The socket
// server fills it in for each connection and hands it to the agent in the request's
// context (WithCaller); the audit log and per-use confirmation read it (CallerFrom).
//
// What can be trusted: UID and PID are the kernel's, taken when the connection was made.
// Exe, Dev and Ino are read from /proc/PID/exe right after; a process that execs another
// program after it connected keeps its pid, so Exe names the program that connected, not
// one that runs later; a pid that exited and was reused between connect and the read
// would name another program (the window is the time of one readlink). The zero value
// (or a nil *Caller) means unknown: an in-process call, or a system that does not tell.
type Caller struct {
	PID int // process id; 0: unknown
	UID int

	// Exe is the absolute path of the caller's executable at connect time; "" when it
	// could not be read. Dev and Ino identify that file, so that a binary replaced at the
	// same path is a different executable.
	Exe      string
	Dev, Ino uint64
	// ExeDeleted: the file was removed or replaced at its path after the process started
	// it (an upgrade, say); Dev and Ino are still those of the file the process runs.
	ExeDeleted bool

	// ParentPID and ParentExe are the caller's parent process: for the git, curl, docker
	// and kubectl helpers (authagent run by another program), the program that ran the
	// helper. 0 and "" when unknown.
	ParentPID int
	ParentExe string
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom is the Caller ctx carries; nil when none (an in-process call).
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}
