package agent

import "context"

// Caller is the process on the other end of a request, as the kernel named it when it
// connected (SO_PEERCRED: pid and uid) and as /proc showed it when the agent accepted the
// connection. The socket server fills it in for each connection and hands it to the agent
// in the request's context (WithCaller); the audit log and per-use confirmation read it
// (CallerFrom).
//
// What can be trusted: UID and PID are the kernel's, taken when the connection was made.
// Exe and the file's identity are read from /proc/PID/exe when the agent accepts the
// connection, which can be later: a process that execs another program after it connected
// but before the accept is named by the new program, and one that execs after the accept
// keeps the name read at the accept. Start tells a reused pid apart. A program of the same
// user can run any executable with its own code in it (LD_PRELOAD, ptrace), so Exe is a
// hint for the user, not proof of what the process does; docs/security.md says more. The
// zero value (or a nil *Caller) means unknown: an in-process call, or a system that does
// not tell.
type Caller struct {
	PID int // process id; 0: unknown
	UID int
	// Start is the process's start time in clock ticks after boot (/proc/PID/stat field
	// 22): with PID it names one process, not whichever one has the pid later. 0: unknown.
	Start uint64

	// Exe is the absolute path of the caller's executable as the kernel names it; "" when
	// it could not be read. Dev and Ino identify the file the process runs, Ctime (its
	// inode change time, in nanoseconds since the epoch) and Size its state, so that a
	// binary replaced at the same path, or rewritten in place, is a different executable.
	Exe      string
	Dev, Ino uint64
	Ctime    int64
	Size     int64
	// ExeDeleted: the file was removed or replaced at its path after the process started
	// it (an upgrade, say); Dev and Ino are still those of the file the process runs.
	ExeDeleted bool
	// ExeMismatch: the file at path Exe, as the agent sees it, is not the file the process
	// runs (a deleted or replaced file, or a path made up in another mount namespace), so
	// Exe does not name what runs.
	ExeMismatch bool

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
