// Package agent is the credential agent itself: the profile registry, the credential cache,
// the refresh scheduler with single flight and backoff, the profile state machine, the event
// bus, the secret stores and the config file. It owns every secret and is the only code that
// calls providers. It knows nothing of sockets, HTTP routing or the CLI (package ipc and
// cmd/authagent do that) and nothing of any one credential kind (the packages under
// providers do that; they are handed in as Factories).
package agent
