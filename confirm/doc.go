// Package confirm asks the user whether a program may use a profile, for the agent's
// per-use confirmation (agent.Confirmer; a profile's confirm key). Desktop asks through a
// desktop notification with Allow and Deny actions (org.freedesktop.Notifications on the
// session bus) and waits for the user's click.
//
// It owns the asking only: when to ask, what an approval is remembered for and what the
// caller is told are the agent's (agent/confirm.go). It holds no secret and sees none.
package confirm
