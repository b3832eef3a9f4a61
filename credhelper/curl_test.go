package credhelper

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCurlArgs(t *testing.T) {
	body := "x=1"
	for _, tc := range []struct {
		name       string
		args       []string
		want       *CurlArgs
		wantMethod string
	}{
		{"plain", []string{"-s", "https://a.example/x"}, &CurlArgs{URLs: []string{"https://a.example/x"}}, "GET"},
		{"glued method", []string{"-sXDELETE", "https://a/x"}, &CurlArgs{URLs: []string{"https://a/x"}, Method: "DELETE"}, "DELETE"},
		{"separate method", []string{"-X", "put", "--data-binary", "@f.json", "https://a/x"}, &CurlArgs{URLs: []string{"https://a/x"}, Method: "PUT", BodyFile: "f.json"}, "PUT"},
		{"head", []string{"-I", "https://a/x"}, &CurlArgs{URLs: []string{"https://a/x"}, Head: true}, "HEAD"},
		{"body implies POST", []string{"--data-binary=" + body, "--url", "https://a/x"}, &CurlArgs{URLs: []string{"https://a/x"}, Body: &body}, "POST"},
		{"a referer is not a target, a second URL is", []string{"-e", "https://b/", "https://a/x", "http://c/y"},
			&CurlArgs{URLs: []string{"https://a/x", "http://c/y"}}, ""},
		{"follow in a group", []string{"-sSL", "-H", "X: http://not-a-target", "https://a/x"}, &CurlArgs{URLs: []string{"https://a/x"}, Follow: true}, "GET"},
		{"form body", []string{"-F", "a=@x", "https://a/x"}, &CurlArgs{URLs: []string{"https://a/x"}, OtherBody: "-F"}, ""},
		{"get", []string{"-G", "-d", "q=1", "https://a/x"}, &CurlArgs{URLs: []string{"https://a/x"}, Get: true, OtherBody: "-d"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCurlArgs(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			m, err := got.SignedMethod()
			if (err == nil) != (tc.wantMethod != "") || m != tc.wantMethod {
				t.Errorf("SignedMethod() = %q, %v; want %q", m, err, tc.wantMethod)
			}
		})
	}
	if _, err := ParseCurlArgs([]string{"https://a/x", "-H"}); err == nil {
		t.Error("an option without its value was accepted")
	}
}

// Every URL curl would request is found, however it is written, and options that send the
// requests where the URLs do not say are refused.
func TestParseCurlArgsFindsEveryURL(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    []string
		wantErr string
	}{
		{args: []string{"https://api.example.com/", "127.0.0.2:18090/noscheme"}, want: []string{"https://api.example.com/", "http://127.0.0.2:18090/noscheme"}},
		{args: []string{"HTTPS://api.example.com/", "HTTP://127.0.0.2/upper"}, want: []string{"https://api.example.com/", "http://127.0.0.2/upper"}},
		{args: []string{"-o", "out.json", "--output", "o2", "--max-time", "5", "https://a/x"}, want: []string{"https://a/x"}},
		{args: []string{"--compressed", "-s", "https://a/x"}, want: []string{"https://a/x"}},
		{args: []string{"--some-new-option", "evil.example", "https://a/x"}, want: []string{"http://evil.example", "https://a/x"}}, // unknown: its value is checked as a URL
		{args: []string{"https://a/x", "--", "https://evil/"}, want: []string{"https://a/x", "https://evil/"}},
		{args: []string{"-g", "https://[::1]:8080/x"}, want: []string{"https://[::1]:8080/x"}},
		{args: []string{"-K", "k.cfg", "https://a/x"}, wantErr: "--config"},
		{args: []string{"--config=k.cfg", "https://a/x"}, wantErr: "--config"},
		{args: []string{"https://a/x", "--next", "https://evil/"}, wantErr: "--next"},
		{args: []string{"-s:", "https://a/x"}, wantErr: "--next"},
		{args: []string{"--connect-to", "a:443:evil:443", "https://a/x"}, wantErr: "--connect-to"},
		{args: []string{"--resolve", "a:443:10.0.0.1", "https://a/x"}, wantErr: "--resolve"},
		{args: []string{"--unix-socket", "/tmp/s", "http://a/x"}, wantErr: "--unix-socket"},
		{args: []string{"https://{a,evil}.example.com/"}, wantErr: "globoff"},
		{args: []string{"https://a.example.com/[1-3]"}, wantErr: "globoff"},
	} {
		got, err := ParseCurlArgs(tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: got %v, %v; want an error naming %s", tc.args, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got.URLs); diff != "" {
			t.Errorf("%q: URLs (-want +got):\n%s", tc.args, diff)
		}
	}
}
