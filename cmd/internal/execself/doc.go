// Package execself hands this process over to another program, for the two authagent
// binaries: the one-shot front execs the full binary, and `authagent exec` execs the
// command it wraps.
package execself
