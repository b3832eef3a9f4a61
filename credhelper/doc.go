// Package credhelper speaks the credential-helper protocols of the tools people already
// run: git's credential helper protocol, curl config files, kubectl's ExecCredential, the
// Docker credential helper protocol and the Bazel credential helper spec. It parses their
// requests, formats answers from a credential, and decides what each tool gets: the use
// cases Git, Docker, Bazel and Kube ask the agent through the small Agent interface (the
// Go client, the one-shot client, or a fake in tests). It never stores anything, and it
// links no net/http, so the one-shot helpers that use it start fast.
package credhelper
