// Package credhelper speaks the credential-helper protocols of the tools people already
// run: git's credential helper protocol, curl config files, kubectl's ExecCredential, the
// Docker credential helper protocol and the Bazel credential helper spec. It parses their
// requests and formats answers from an ipc.Credential; it does not talk to the agent or
// choose profiles (cmd/authagent wires that), and it never stores anything.
package credhelper
