// Package ipc is the Go client of the agent's socket API v1: Client (every call of the
// API), Transport (an http.RoundTripper that puts a profile's headers on requests) and
// PerRPCCredentials (gRPC metadata), the wire types and error codes (from ipc/wire), the
// socket path rules, and the check that the socket's server is the user's own. It holds no
// secrets and no policy, and it imports nothing of the agent: a program that talks to the
// agent links none of it (ipc/server is the other end).
package ipc
