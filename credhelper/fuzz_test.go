package credhelper

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzGitRequest: whatever git (or anyone) writes on a helper's stdin, reading it never
// panics, and an answer written for it parses back as the same key=value lines.
func FuzzGitRequest(f *testing.F) {
	f.Add("protocol=https\nhost=git.example.com\n\n")
	f.Add("protocol=https\nhost=git.example.com:8443\npath=org/repo.git\nusername=oauth2\npassword=tok\ncapability[]=authtype\n\n")
	f.Add("url=https://user@git.example.com/a/b\n")
	f.Add("protocol=https\r\nhost=h\r\n\r\n")
	f.Add("garbage")
	f.Add("host=" + strings.Repeat("a", MaxGitLine+1) + "\n")
	f.Fuzz(func(t *testing.T, in string) {
		req, err := ReadGitRequest(strings.NewReader(in))
		if err != nil {
			return
		}
		_ = req.URL()
		_ = req.Refused()
		var out bytes.Buffer
		if err := WriteGitAnswer(&out, req, GitAnswer{Username: "oauth2", Token: "tok-123", ExpiresAt: time.Unix(1700000000, 0)}); err != nil {
			return // refused: a value that cannot go in the protocol
		}
		back, err := ReadGitRequest(&out)
		if err != nil {
			t.Fatalf("the answer does not parse back: %v\n%q", err, out.String())
		}
		if back.Password != "" && back.Password != "tok-123" && back.Credential == "" {
			t.Fatalf("the answer carries a password that is not the token: %q", out.String())
		}
	})
}

// FuzzExecInfo: KUBERNETES_EXEC_INFO never panics the parser, and what it accepts has an
// apiVersion authagent answers in.
func FuzzExecInfo(f *testing.F) {
	f.Add(``)
	f.Add(`{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true}}`)
	f.Add(`{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false,"cluster":{"server":"https://k8s.example.com:6443"}}}`)
	f.Add(`{"apiVersion":"v2"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, raw string) {
		ec, err := ParseExecInfo(raw)
		if err != nil {
			return
		}
		switch ec.APIVersion {
		case ExecCredentialAPIVersion, "client.authentication.k8s.io/v1beta1":
		default:
			t.Fatalf("accepted apiVersion %q", ec.APIVersion)
		}
		var out bytes.Buffer
		if err := WriteExecCredential(&out, ec.APIVersion, "tok", time.Unix(1700000000, 0)); err != nil {
			t.Fatalf("cannot answer an accepted request: %v", err)
		}
	})
}

// FuzzDockerServerURL: any server name docker passes gives a URL or nothing, never a panic.
func FuzzDockerServerURL(f *testing.F) {
	for _, s := range []string{"registry.example.com", "https://index.docker.io/v1/", "localhost:5000", "[::1]:5000", "", "%zz", "http://a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, server string) {
		_ = DockerServerURL(server)
	})
}

// FuzzHeaderFormats: headers that reach curl's config or "Name: value" lines never carry a
// line break into the output (that would inject a header or a curl option).
func FuzzHeaderFormats(f *testing.F) {
	f.Add("Authorization", "Bearer tok")
	f.Add("X-K", "a\r\nX-Evil: 1")
	f.Add("X-K", `a" -o /tmp/x "`)
	f.Fuzz(func(t *testing.T, name, value string) {
		h := map[string]string{name: value}
		for what, format := range map[string]func(map[string]string) (string, error){"curl config": CurlConfig, "header lines": HeaderLines} {
			out, err := format(h)
			if err != nil {
				continue
			}
			if lines := strings.Count(strings.TrimRight(out, "\n"), "\n") + 1; lines != 1 {
				t.Fatalf("%s: one header became %d lines: %q", what, lines, out)
			}
		}
	})
}

// FuzzBazelRequest: whatever Bazel (or anyone) writes, reading it never panics, and a
// request it accepts has an absolute URI.
func FuzzBazelRequest(f *testing.F) {
	f.Add(`{"uri":"https://remote.example.com/build.bazel.remote.execution.v2.Execution/Execute"}`)
	f.Add(`{"uri":"grpcs://cache.example.com"}`)
	f.Add(`{"uri":"relative/path"}`)
	f.Add(`{"uri":1}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, in string) {
		req, err := ReadBazelRequest(strings.NewReader(in))
		if err != nil {
			return
		}
		if req.URI == "" || !strings.Contains(req.URI, ":") {
			t.Fatalf("accepted %q with uri %q", in, req.URI)
		}
	})
}
