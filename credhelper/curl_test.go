package credhelper

import (
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
