package credhelper

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReadGitRequest(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     *GitRequest
		wantURL  string
	}{
		{"plain", "protocol=https\nhost=git.example.com\n\n",
			&GitRequest{Protocol: "https", Host: "git.example.com"}, "https://git.example.com/"},
		{"port, path, unknown keys, capabilities, no blank line", "protocol=http\nhost=127.0.0.1:8080\npath=org/repo.git\nwwwauth[]=Bearer realm=x\ncapability[]=authtype\ncapability[]=state\nfuture=1",
			&GitRequest{Protocol: "http", Host: "127.0.0.1:8080", Path: "org/repo.git", Capabilities: []string{"authtype", "state"}}, "http://127.0.0.1:8080/org/repo.git"},
		{"crlf and username", "protocol=https\r\nhost=h\r\nusername=bob\r\n\r\nignored=after blank\n",
			&GitRequest{Protocol: "https", Host: "h", Username: "bob"}, "https://h/"},
		{"url key", "url=https://git.example.com/a/b.git\n\n",
			&GitRequest{Protocol: "https", Host: "git.example.com", Path: "a/b.git"}, "https://git.example.com/a/b.git"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadGitRequest(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if u := got.URL(); u != tc.wantURL {
				t.Errorf("URL() = %q, want %q", u, tc.wantURL)
			}
		})
	}
}

func TestReadGitRequestLimits(t *testing.T) {
	long := "protocol=https\nhost=h\npath=" + strings.Repeat("a", MaxGitLine-5) + "\n\n"
	if _, err := ReadGitRequest(strings.NewReader(long)); err != nil {
		t.Errorf("a line of %d bytes: %v", MaxGitLine, err)
	}
	tooLong := "path=" + strings.Repeat("a", MaxGitLine+10) + "\n"
	if _, err := ReadGitRequest(strings.NewReader(tooLong)); err == nil {
		t.Error("a line over git's limit was accepted")
	}
	if _, err := ReadGitRequest(strings.NewReader("garbage\n")); err == nil {
		t.Error("a line without '=' was accepted")
	}
}

func TestWriteGitAnswer(t *testing.T) {
	exp := time.Unix(1800000000, 0)
	a := GitAnswer{Username: "oauth2", Token: "tok", TokenType: "Bearer", ExpiresAt: exp}
	for _, tc := range []struct {
		name string
		caps []string
		want string
	}{
		{"basic", nil, "username=oauth2\npassword=tok\npassword_expiry_utc=1800000000\n"},
		{"authtype", []string{"authtype"}, "capability[]=authtype\nauthtype=Bearer\ncredential=tok\nephemeral=true\npassword_expiry_utc=1800000000\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := WriteGitAnswer(&b, &GitRequest{Capabilities: tc.caps}, a); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
	var basic strings.Builder
	WriteGitAnswer(&basic, &GitRequest{Capabilities: []string{"authtype"}}, GitAnswer{Username: "u", Token: "k", TokenType: "api-key"})
	if basic.String() != "username=u\npassword=k\n" {
		t.Errorf("a non-bearer token with authtype: got %q, want Basic", basic.String())
	}
	var b strings.Builder
	if err := WriteGitAnswer(&b, &GitRequest{}, GitAnswer{Token: "a\nb"}); err == nil || b.Len() != 0 {
		t.Errorf("a token with a line break: err %v, wrote %q", err, b.String())
	}
}

func TestGitRefused(t *testing.T) {
	if r := (&GitRequest{Password: "p", Credential: "c"}).Refused(); r != "p" {
		t.Errorf("Refused = %q, want the password", r)
	}
	if r := (&GitRequest{Credential: "c"}).Refused(); r != "c" {
		t.Errorf("Refused = %q, want the authtype credential", r)
	}
}
