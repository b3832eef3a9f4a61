package credhelper

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCurlConfig(t *testing.T) {
	got, err := CurlConfig(map[string]string{"Authorization": `Bearer a"b\c`, "X-Id": "1\t2"})
	if err != nil {
		t.Fatal(err)
	}
	want := "header = \"Authorization: Bearer a\\\"b\\\\c\"\nheader = \"X-Id: 1\\t2\"\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := CurlConfig(map[string]string{"X": "a\nb"}); err == nil {
		t.Error("a value with a line break was rendered")
	}
}

func TestExecCredential(t *testing.T) {
	var b strings.Builder
	exp := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	if err := WriteExecCredential(&b, "", "tok", exp); err != nil {
		t.Fatal(err)
	}
	// The published shape: apiVersion, kind, status.token, status.expirationTimestamp.
	var got map[string]any
	if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
		"spec":   map[string]any{"interactive": false},
		"status": map[string]any{"token": "tok", "expirationTimestamp": "2026-01-02T03:04:05Z"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for raw, want := range map[string]bool{
		"": true,
		`{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}`: false,
		`{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true}}`:  true,
	} {
		ec, err := ParseExecInfo(raw)
		if err != nil || ec.Spec.Interactive != want || ec.APIVersion != ExecCredentialAPIVersion {
			t.Errorf("ParseExecInfo(%q) = %+v, %v; want interactive %v", raw, ec, err, want)
		}
	}
	ec, err := ParseExecInfo(`{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false,"cluster":{"server":"https://k8s.example.com:6443"}}}`)
	if err != nil || ec.APIVersion != "client.authentication.k8s.io/v1beta1" || ec.Spec.Cluster == nil || ec.Spec.Cluster.Server != "https://k8s.example.com:6443" {
		t.Errorf("v1beta1 with cluster info: %+v, %v", ec, err)
	}
	var beta strings.Builder
	WriteExecCredential(&beta, ec.APIVersion, "tok", time.Time{})
	if !strings.Contains(beta.String(), `"apiVersion":"client.authentication.k8s.io/v1beta1"`) {
		t.Errorf("answer to v1beta1: %s", beta.String())
	}
}

func TestBazelResponse(t *testing.T) {
	r := NewBazelResponse(map[string]string{"Authorization": "Bearer t"}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	b, _ := json.Marshal(r)
	if string(b) != `{"headers":{"Authorization":["Bearer t"]},"expires":"2026-01-02T03:04:05Z"}` {
		t.Errorf("got %s", b)
	}
}

func TestHeaderLinesAndDockerURL(t *testing.T) {
	got, err := HeaderLines(map[string]string{"X-B": "2", "Authorization": "Bearer t"})
	if err != nil || got != "Authorization: Bearer t\nX-B: 2\n" {
		t.Errorf("HeaderLines = %q, %v", got, err)
	}
	if _, err := HeaderLines(map[string]string{"X": "a\r\nEvil: b"}); err == nil {
		t.Error("a value with a line break was rendered")
	}
	for in, want := range map[string]string{
		"registry.example.com":        "https://registry.example.com/",
		"https://index.docker.io/v1/": "https://index.docker.io/v1/",
	} {
		if got := DockerServerURL(in); got != want {
			t.Errorf("DockerServerURL(%q) = %q, want %q", in, got, want)
		}
	}
}
