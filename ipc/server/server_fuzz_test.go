package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/authagent/authagent/ipc/wire"
)

// FuzzSocketAPI sends the socket API any method, path, query and body, as the agent's own
// user. Whatever it is, the agent answers with one of the contract's statuses (never a 500),
// every error is a JSON error object with a code, and no answer but a credential carries
// the stored secret.
func FuzzSocketAPI(f *testing.F) {
	e := startServer(f, nil)
	h := (&Server{Agent: e.a}).Handler()
	peer := wire.Peer{Known: true, UID: os.Getuid(), PID: os.Getpid()}
	for _, seed := range []struct {
		method, path, body string
	}{
		{"GET", "status", ""},
		{"GET", "profiles", ""},
		{"GET", "profiles/hub/credential?min_valid=30", ""},
		{"GET", "credential?url=https://api.example.com/x", ""},
		{"PUT", "profiles/x", `{"provider":"apikey","hosts":["a.example.com"],"secret":"s3"}`},
		{"PUT", "profiles/x", `{"provider":"apikey","Provider":"devicecode"}`},
		{"PUT", "profiles/x", `{"provider":"apikey","headers":{"X-K":"a\r\nb {secret}"}}`},
		{"PUT", "profiles/hub/token", `{"token":"t","expires_at":"2026-01-01T00:00:00Z"}`},
		{"POST", "profiles/hub/sign", `{"method":"GET","url":"https://api.example.com/"}`},
		{"POST", "profiles/hub/reject", ""},
		{"POST", "profiles/hub/login", ""},
		{"DELETE", "profiles/x", ""},
		{"PATCH", "profiles/hub", "{}"},
	} {
		f.Add(seed.method, seed.path, seed.body)
	}
	allowed := map[int]bool{200: true, 202: true, 204: true, 400: true, 401: true, 403: true, 404: true,
		405: true, 409: true, 413: true, 502: true, 503: true}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if strings.Contains(path, "events") {
			return // a stream; it has its own tests
		}
		req, err := http.NewRequest(method, "http://authagent/v1/"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req = req.WithContext(context.WithValue(req.Context(), peerKey{}, peer))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("%s /v1/%s %q: status %d\n%s", method, path, body, rec.Code, rec.Body)
		}
		out := rec.Body.Bytes()
		if rec.Code >= 400 {
			var ae struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if json.Unmarshal(out, &ae) != nil || ae.Error.Code == "" || ae.Error.Message == "" {
				t.Fatalf("%s /v1/%s: error answer %d is not an error object: %q", method, path, rec.Code, out)
			}
		}
		if bytes.Contains(out, []byte(canary)) && !strings.Contains(req.URL.Path, "credential") {
			t.Fatalf("%s /v1/%s %q: the answer holds the stored secret: %q", method, path, body, out)
		}
	})
}
