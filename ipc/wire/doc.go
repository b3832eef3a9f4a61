// Package wire is the socket API v1 without an HTTP stack: its wire types and error
// codes, where the socket is, and the check that the process serving it is the user's own
// (ServerCheck). Package ipc builds the Go client on it and re-exports its names; the
// one-shot helpers (package ipc/oneshot) use it directly, so that a program that calls
// the agent once and exits links no net/http. It imports nothing of the project.
package wire
