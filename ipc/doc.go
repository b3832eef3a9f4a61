// Package ipc is the agent's socket API v1: the wire types, the HTTP handlers that serve an
// *agent.Agent over a Unix socket with a peer-uid check on every connection, choosing and
// listening on the socket, and the Go client (with an http.RoundTripper and gRPC per-RPC
// credentials) that every other part of authagent and any Go program uses. It holds no
// secrets and no policy: the agent decides, ipc carries.
package ipc
