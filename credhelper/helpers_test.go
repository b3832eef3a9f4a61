package credhelper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/ipc/wire"
)

// fakeAgent serves credentials by profile, and profiles by host; err, when set, is what
// every call fails with. It records the calls.
type fakeAgent struct {
	creds    map[string]*wire.Credential // by profile
	profiles []wire.Profile
	err      error
	// needsLogin makes Credential fail with needs_login until login is called.
	needsLogin bool
	// old plays an agent from before token=kube.
	old   bool
	calls []string
}

func (f *fakeAgent) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeAgent) Credential(_ context.Context, profile string, opts ...wire.CredentialOption) (*wire.Credential, error) {
	f.record("Credential %s %s", profile, wire.CredentialQuery(opts...).Encode())
	if f.err != nil {
		return nil, f.err
	}
	if q := wire.CredentialQuery(opts...); q.Get("token") == wire.TokenKube && f.old {
		return nil, &wire.Error{Status: 400, Code: wire.CodeBadRequest, Message: `token must be "access_token" or "id_token", got "kube"`}
	}
	if f.needsLogin {
		return nil, &wire.Error{Status: 401, Code: wire.CodeNeedsLogin, Message: profile + " needs a login"}
	}
	c, ok := f.creds[profile]
	if !ok {
		return nil, &wire.Error{Status: 404, Code: wire.CodeUnknownProfile, Message: "no profile " + profile}
	}
	return c, nil
}

func (f *fakeAgent) CredentialForURL(_ context.Context, target string, _ ...wire.CredentialOption) (*wire.Credential, error) {
	f.record("CredentialForURL %s", target)
	if f.err != nil {
		return nil, f.err
	}
	u, _ := url.Parse(target)
	for _, p := range f.profiles {
		for _, h := range p.Hosts {
			if h == u.Host {
				return f.creds[p.Name], nil
			}
		}
	}
	return nil, &wire.Error{Status: 404, Code: wire.CodeNoProfile, Message: "no profile for " + u.Host}
}

func (f *fakeAgent) Profile(_ context.Context, name string) (*wire.Profile, error) {
	f.record("Profile %s", name)
	if f.err != nil {
		return nil, f.err
	}
	for _, p := range f.profiles {
		if p.Name == name {
			return &p, nil
		}
	}
	return nil, &wire.Error{Status: 404, Code: wire.CodeUnknownProfile, Message: "no profile " + name}
}

func (f *fakeAgent) Profiles(context.Context) ([]wire.Profile, error) {
	f.record("Profiles")
	return f.profiles, f.err
}

func (f *fakeAgent) Reject(_ context.Context, profile string) error {
	f.record("Reject %s", profile)
	return f.err
}

func newFake() *fakeAgent {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	return &fakeAgent{
		creds: map[string]*wire.Credential{
			"forge": {Profile: "forge", TokenType: "Bearer", Token: "tok-1", ExpiresAt: &exp, Username: "oauth2",
				Headers: map[string]string{"Authorization": "Bearer tok-1"}},
		},
		profiles: []wire.Profile{{Name: "forge", Hosts: []string{"git.example.com", "*.example.com"}, Username: "oauth2"}},
	}
}

func TestGit(t *testing.T) {
	const get = "protocol=https\nhost=git.example.com\n\n"
	for _, tc := range []struct {
		name       string
		op, in     string
		err        error // the agent's
		wantOut    string
		wantStderr string
		wantCalls  []string
		wantErr    bool
	}{
		{name: "get", op: "get", in: get, wantOut: "username=oauth2\npassword=tok-1\npassword_expiry_utc=1893553445\n",
			wantCalls: []string{"CredentialForURL https://git.example.com/"}},
		{name: "no profile: silent, git asks its next helper", op: "get", in: "protocol=https\nhost=other.org\n\n",
			wantCalls: []string{"CredentialForURL https://other.org/"}},
		{name: "no agent: one line on stderr", op: "get", in: get, err: fmt.Errorf("%w at /s: start one\ndetail", wire.ErrNoAgent),
			wantStderr: "authagent: no agent is running at /s: start one\n", wantCalls: []string{"CredentialForURL https://git.example.com/"}},
		{name: "another user's socket is an error", op: "get", in: get, err: &wire.UntrustedServerError{Socket: "/s", Path: "/s", UID: 7},
			wantErr: true, wantCalls: []string{"CredentialForURL https://git.example.com/"}},
		{name: "erase of the token the agent holds drops it", op: "erase", in: get[:len(get)-1] + "password=tok-1\n\n",
			wantCalls: []string{"CredentialForURL https://git.example.com/", "Reject forge"}},
		{name: "erase of an older token keeps the newer one", op: "erase", in: get[:len(get)-1] + "password=tok-0\n\n",
			wantCalls: []string{"CredentialForURL https://git.example.com/"}},
		{name: "erase without a token drops it", op: "erase", in: get,
			wantCalls: []string{"CredentialForURL https://git.example.com/", "Reject forge"}},
		{name: "store keeps nothing", op: "store", in: get[:len(get)-1] + "password=x\n\n"},
		{name: "not http", op: "get", in: "protocol=ssh\nhost=git.example.com\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.err = tc.err
			var out, stderr bytes.Buffer
			err := (&Git{Agent: f, Stderr: &stderr}).Do(context.Background(), GitInput{Op: tc.op, In: strings.NewReader(tc.in), Out: &out})
			if (err != nil) != tc.wantErr {
				t.Errorf("Do: %v, want error %v", err, tc.wantErr)
			}
			if out.String() != tc.wantOut || stderr.String() != tc.wantStderr {
				t.Errorf("out %q, stderr %q; want %q, %q", out.String(), stderr.String(), tc.wantOut, tc.wantStderr)
			}
			if diff := cmp.Diff(tc.wantCalls, f.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDocker(t *testing.T) {
	for _, tc := range []struct {
		name, op, in string
		err          error
		wantOut      string
		wantExit     int // 0: no *ExitError
		wantCalls    []string
	}{
		{name: "get", op: "get", in: "git.example.com\n", wantOut: `{"ServerURL":"git.example.com","Username":"oauth2","Secret":"tok-1"}` + "\n",
			wantCalls: []string{"CredentialForURL https://git.example.com/"}},
		{name: "not ours", op: "get", in: "registry.other.org", wantOut: DockerNotFound + "\n", wantExit: 1,
			wantCalls: []string{"CredentialForURL https://registry.other.org/"}},
		{name: "no agent", op: "get", in: "git.example.com", err: fmt.Errorf("%w at /s", wire.ErrNoAgent), wantOut: DockerNotFound + "\n", wantExit: 1,
			wantCalls: []string{"CredentialForURL https://git.example.com/"}},
		{name: "agent fails: one line on stdout", op: "get", in: "git.example.com", err: errors.New("refresh failed\nmore"), wantOut: "refresh failed\n", wantExit: 1,
			wantCalls: []string{"CredentialForURL https://git.example.com/"}},
		{name: "erase", op: "erase", in: "https://git.example.com", wantCalls: []string{"CredentialForURL https://git.example.com", "Reject forge"}},
		{name: "erase not ours", op: "erase", in: "other.org", wantCalls: []string{"CredentialForURL https://other.org/"}},
		{name: "store keeps nothing", op: "store", in: `{"ServerURL":"x","Username":"u","Secret":"s"}`},
		{name: "list: plain hosts only", op: "list", wantOut: `{"https://git.example.com":"oauth2"}` + "\n", wantCalls: []string{"Profiles"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.err = tc.err
			var out bytes.Buffer
			err := (&Docker{Agent: f}).Do(context.Background(), DockerInput{Op: tc.op, In: strings.NewReader(tc.in), Out: &out})
			var ee *ExitError
			switch {
			case tc.wantExit != 0 && (!errors.As(err, &ee) || ee.Code != tc.wantExit):
				t.Errorf("Do: %v, want exit %d", err, tc.wantExit)
			case tc.wantExit == 0 && err != nil:
				t.Errorf("Do: %v", err)
			}
			if out.String() != tc.wantOut {
				t.Errorf("out %q, want %q", out.String(), tc.wantOut)
			}
			if diff := cmp.Diff(tc.wantCalls, f.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBazel(t *testing.T) {
	f := newFake()
	var out bytes.Buffer
	if err := (&Bazel{Agent: f}).Do(context.Background(), BazelInput{In: strings.NewReader(`{"uri":"https://git.example.com/x"}`), Out: &out}); err != nil {
		t.Fatal(err)
	}
	if want := `{"headers":{"Authorization":["Bearer tok-1"]},"expires":"2030-01-02T03:04:05Z"}` + "\n"; out.String() != want {
		t.Errorf("got %s, want %s", out.String(), want)
	}
	out.Reset()
	if err := (&Bazel{Agent: f}).Do(context.Background(), BazelInput{In: strings.NewReader(`{"uri":"https://other.org/x"}`), Out: &out}); err != nil {
		t.Fatal(err)
	}
	if want := `{"headers":{}}` + "\n"; out.String() != want {
		t.Errorf("no profile: got %s, want %s", out.String(), want)
	}
	f.err = errors.New("agent down")
	if err := (&Bazel{Agent: f}).Do(context.Background(), BazelInput{In: strings.NewReader(`{"uri":"https://git.example.com/x"}`), Out: &out}); err == nil {
		t.Error("an agent failure is not an error")
	}
}

func TestKube(t *testing.T) {
	const cluster = `{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":%v,"cluster":{"server":"https://kube.example.com"}}}`
	t.Run("access token, only to the cluster's server, in kubectl's version", func(t *testing.T) {
		f := newFake()
		f.profiles[0].Name = "forge"
		var out bytes.Buffer
		if err := (&Kube{Agent: f}).Do(context.Background(), KubeInput{Profile: "forge", ExecInfo: fmt.Sprintf(cluster, false), Out: &out}); err != nil {
			t.Fatal(err)
		}
		want := `{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false},"status":{"token":"tok-1","expirationTimestamp":"2030-01-02T03:04:05Z"}}` + "\n"
		if out.String() != want {
			t.Errorf("got %s\nwant %s", out.String(), want)
		}
		if diff := cmp.Diff([]string{"Credential forge token=kube&url=https%3A%2F%2Fkube.example.com"}, f.calls); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
	t.Run("an agent from before token=kube", func(t *testing.T) {
		for kube, want := range map[string]string{"": "Credential forge ", wire.TokenID: "Credential forge token=id_token"} {
			f := newFake()
			f.old = true
			f.profiles[0].KubeToken = kube
			if err := (&Kube{Agent: f}).Do(context.Background(), KubeInput{Profile: "forge", Out: &bytes.Buffer{}}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"Credential forge token=kube", "Profile forge", want}, f.calls); diff != "" {
				t.Errorf("kube_token %q: calls (-want +got):\n%s", kube, diff)
			}
		}
	})
	t.Run("needs a login: interactive logs in, then answers", func(t *testing.T) {
		f := newFake()
		f.needsLogin = true
		logins := 0
		k := &Kube{Agent: f, Login: func(_ context.Context, name string) error {
			logins++
			f.needsLogin = false
			return nil
		}}
		var out bytes.Buffer
		if err := k.Do(context.Background(), KubeInput{Profile: "forge", ExecInfo: fmt.Sprintf(cluster, true), Out: &out}); err != nil {
			t.Fatal(err)
		}
		if logins != 1 || !strings.Contains(out.String(), `"token":"tok-1"`) {
			t.Errorf("%d logins, out %s", logins, out.String())
		}
	})
	t.Run("needs a login: not interactive fails", func(t *testing.T) {
		f := newFake()
		f.needsLogin = true
		k := &Kube{Agent: f, Login: func(context.Context, string) error { t.Error("logged in without a terminal"); return nil }}
		var out bytes.Buffer
		err := k.Do(context.Background(), KubeInput{Profile: "forge", ExecInfo: fmt.Sprintf(cluster, false), Out: &out})
		if !wire.IsCode(err, wire.CodeNeedsLogin) || out.Len() != 0 {
			t.Errorf("Do: %v, out %q; want needs_login and nothing written", err, out.String())
		}
	})
}

func TestTokenAndHeader(t *testing.T) {
	f := newFake()
	var out bytes.Buffer
	if err := (&Token{Agent: f}).Do(context.Background(), TokenInput{Profile: "forge", MinValid: 90 * time.Second, IDToken: true, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "tok-1\n" {
		t.Errorf("token: %q", out.String())
	}
	out.Reset()
	if err := (&Header{Agent: f}).Do(context.Background(), HeaderInput{Profile: "forge", Out: &out}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Authorization: Bearer tok-1\n" {
		t.Errorf("header: %q", out.String())
	}
	want := []string{"Credential forge min_valid=90&token=id_token", "Credential forge "}
	if diff := cmp.Diff(want, f.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if err := (&Token{Agent: f}).Do(context.Background(), TokenInput{Profile: "nope", Out: &out}); !wire.IsCode(err, wire.CodeUnknownProfile) {
		t.Errorf("unknown profile: %v", err)
	}
}
