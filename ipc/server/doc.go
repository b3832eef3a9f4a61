// Package server is the socket API v1's server side: the HTTP handlers that serve an
// *agent.Agent, one route table, the peer-uid check on every connection (SO_PEERCRED), the
// limits on clients (body size, idle and write timeouts), and listening on the socket
// (a private directory, a stale socket replaced, or the socket systemd passes). It is the
// only package of the socket API that imports the agent; clients use package ipc, which
// knows nothing of this one. It holds no policy: the agent decides, server carries.
package server
