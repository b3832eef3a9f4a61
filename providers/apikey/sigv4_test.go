package apikey

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/logging"
	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/providers"
)

const suiteDir = "testdata/aws-sig-v4-test-suite"

// suiteSkips are the suite's vectors this signer does not reproduce, on purpose. Each one is
// still run: if it starts to pass, the test says to take it off this list.
var suiteSkips = map[string]string{
	// The v4 signer signs the path as the request sends it and does not normalize it, as
	// aws-sdk-go-v2 does for every service. A client that sends "/./example" is signed for
	// "/./example"; the suite's normalize-path vectors expect "/example" instead.
	"normalize-path/get-relative":            "path normalization: the signer signs the path as sent",
	"normalize-path/get-relative-relative":   "path normalization: the signer signs the path as sent",
	"normalize-path/get-slash":               "path normalization: the signer signs the path as sent",
	"normalize-path/get-slash-dot-slash":     "path normalization: the signer signs the path as sent",
	"normalize-path/get-slash-pointless-dot": "path normalization: the signer signs the path as sent",
	"normalize-path/get-slashes":             "path normalization: the signer signs the path as sent",
	// These two write an unencoded path in the request line ("/example space/", "/ሴ"), which
	// no client can send, and expect it encoded once. Sign takes the URL as the client sends
	// it, "/example%20space/", and the signer encodes that wire path once more, as AWS
	// documents for services other than S3 (each path segment encoded twice).
	"normalize-path/get-space": "unencoded path in the request line: Sign encodes the wire form, /example%20space/, once more",
	"get-utf8":                 "unencoded path in the request line: Sign encodes the wire form, /%E1%88%B4, once more",
}

// suiteTime is the suite's signing time, the X-Amz-Date of every vector.
var suiteTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

// parseSuiteRequest turns a .req file into the SignRequest a client would send for it: the
// Host header becomes the URL's host, the body its SHA-256. X-Amz-Date is left out, since the
// signer sets it from the clock. A header on several lines (obsolete folding) is joined with
// spaces, and a header given several times is joined with commas: SignRequest.Headers is a map,
// and HTTP lets repeated fields be combined that way (RFC 9110 §5.3).
func parseSuiteRequest(t *testing.T, raw string) providers.SignRequest {
	t.Helper()
	head, body, _ := strings.Cut(raw, "\n\n")
	lines := strings.Split(strings.TrimRight(head, "\n"), "\n")
	method, rest, _ := strings.Cut(lines[0], " ")
	target := rest[:strings.LastIndex(rest, " HTTP/")]
	type field struct{ name, value string }
	var fields []field
	for _, l := range lines[1:] {
		if l[0] == ' ' || l[0] == '\t' {
			fields[len(fields)-1].value += " " + strings.TrimSpace(l)
			continue
		}
		name, value, _ := strings.Cut(l, ":")
		fields = append(fields, field{name, value})
	}
	sr := providers.SignRequest{Method: method, Headers: map[string]string{}}
	host := ""
	for _, f := range fields {
		switch {
		case strings.EqualFold(f.name, "Host"):
			host = f.value
		case strings.EqualFold(f.name, "X-Amz-Date"):
		case sr.Headers[f.name] != "":
			sr.Headers[f.name] += "," + f.value
		default:
			sr.Headers[f.name] = f.value
		}
	}
	sr.URL = "https://" + host + target
	sum := sha256.Sum256([]byte(body))
	sr.BodySHA256 = hex.EncodeToString(sum[:])
	return sr
}

// signingLog keeps what the v4 signer logs: the canonical request and the string to sign.
type signingLog struct{ creq, sts string }

func (l *signingLog) Logf(_ logging.Classification, _ string, v ...any) {
	l.creq, l.sts = v[0].(string), v[1].(string)
}

// suiteProvider is a sigv4 profile with the suite's key, region, service and time; its signer
// logs the canonical request and string to sign into log.
func suiteProvider(t *testing.T, log *signingLog) *SigV4 {
	t.Helper()
	p, err := New(&providers.ProfileConfig{Provider: Name, Mode: "sigv4", KeyID: "AKIDEXAMPLE", Region: "us-east-1", Service: "service"},
		providers.Env{Name: "aws", Secrets: secrets{"secret": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}, Now: func() time.Time { return suiteTime }})
	if err != nil {
		t.Fatal(err)
	}
	s := p.(*SigV4)
	s.signer = v4.NewSigner(func(o *v4.SignerOptions) { o.Logger, o.LogSigning = log, true })
	return s
}

func TestSigV4Suite(t *testing.T) {
	var names []string
	err := filepath.WalkDir(suiteDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".req") {
			rel, _ := filepath.Rel(suiteDir, filepath.Dir(path))
			names = append(names, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 20 || 2*len(suiteSkips) >= len(names) {
		t.Fatalf("%d vectors, %d skipped: the suite is missing or mostly skipped", len(names), len(suiteSkips))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			read := func(ext string) string {
				b, err := os.ReadFile(filepath.Join(suiteDir, name, filepath.Base(name)+ext))
				if err != nil && !(ext == ".sts" && errors.Is(err, fs.ErrNotExist)) {
					t.Fatal(err)
				}
				return string(b)
			}
			var log signingLog
			got, err := suiteProvider(t, &log).Sign(context.Background(), parseSuiteRequest(t, read(".req")))
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"Authorization": read(".authz"), "X-Amz-Date": "20150830T123600Z"}
			diff := cmp.Diff(want, got)
			if why, ok := suiteSkips[name]; ok {
				if diff == "" {
					t.Fatalf("the vector passes now; remove it from suiteSkips (%s)", why)
				}
				t.Skip(why)
			}
			if diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			if want := read(".creq"); log.creq != want {
				t.Errorf("canonical request\n got: %q\nwant: %q", log.creq, want)
			}
			if want := read(".sts"); want != "" && log.sts != want {
				t.Errorf("string to sign\n got: %q\nwant: %q", log.sts, want)
			}
		})
	}
}

// TestSigV4DCI signs the requests of python-dciauth's own tests (tests/unit/v2/
// test_signature_is_valid.py), which DCI's verifier accepts: AWS names (AWS4-HMAC-SHA256,
// X-Amz-Date, aws4_request), a remoteci key id with a '/', region BHS3, service api.
func TestSigV4DCI(t *testing.T) {
	const (
		keyID  = "remoteci/464cc0a3-d638-4081-a69e-4c80261f3ba5"
		secret = "0nqAfEUJr3OWO8YnyjlGf2h2lrmz3MD343ECjyDTCr3lphcRND2cNESYuo5IXA8t"
	)
	for _, tc := range []struct {
		name   string
		keyID  string
		secret string
		at     time.Time
		req    providers.SignRequest
		want   map[string]string
	}{
		{
			name: "GET, signed by Postman", keyID: keyID, secret: secret,
			at:  time.Date(2019, 10, 8, 12, 16, 59, 0, time.UTC),
			req: providers.SignRequest{Method: "GET", URL: "http://127.0.0.1:5000/api/v1/identity"},
			want: map[string]string{
				"Authorization": "AWS4-HMAC-SHA256 Credential=remoteci/464cc0a3-d638-4081-a69e-4c80261f3ba5/20191008/BHS3/api/aws4_request, SignedHeaders=host;x-amz-date, Signature=ed58acc0005ad7522c942f731aa4d8570f1f7b3500da9efb7cfe8f74732f4082",
				"X-Amz-Date":    "20191008T121659Z",
			},
		},
		{
			name: "POST with a body hash and content type", keyID: "remoteci/79626298-a124-4e22-b5be-ec1a5e46fb41",
			secret: "XFe4YmxzehlZMGQsL3svsbIrhKBBPHiRWdw22uclpAsX8a6sSixQrZkdxxqdVBDZ",
			at:     time.Date(2019, 10, 21, 10, 56, 28, 0, time.UTC),
			req: providers.SignRequest{
				Method: "POST", URL: "https://api.distributed-ci.io/api/v1/jobs",
				Headers: map[string]string{
					"Content-Type":         "application/json",
					"X-Amz-Content-Sha256": "929e03af12349f2b9f30f892ddc5ca1d8c9f4b68a358a464428c1088268ea765",
					"User-Agent":           "PostmanRuntime/7.17.1", // never signed
				},
				BodySHA256: "929e03af12349f2b9f30f892ddc5ca1d8c9f4b68a358a464428c1088268ea765",
			},
			want: map[string]string{
				"Authorization": "AWS4-HMAC-SHA256 Credential=remoteci/79626298-a124-4e22-b5be-ec1a5e46fb41/20191021/BHS3/api/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=5ab513f88534f6cd454d9604dbbac45339b0ad1b1bbfb36996956eef7981be3f",
				"X-Amz-Date":    "20191021T105628Z",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(&providers.ProfileConfig{Provider: Name, Mode: "sigv4", KeyID: tc.keyID, Region: "BHS3", Service: "api"},
				providers.Env{Name: "dci", Secrets: secrets{"secret": tc.secret}, Now: func() time.Time { return tc.at }})
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.(providers.Signer).Sign(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSigV4Sign(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	var log signingLog
	p := suiteProvider(t, &log)
	ctx := context.Background()

	t.Run("clock, default port, path and query, uppercase body hash", func(t *testing.T) {
		at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
		p := *p
		p.now = func() time.Time { return at }
		got, err := p.Sign(ctx, providers.SignRequest{
			Method: "PUT", URL: "https://api.example.com:443/a%2Fb/c?x=1&b=2",
			Headers:    map[string]string{"X-Custom": " v  w "},
			BodySHA256: strings.ToUpper(emptySHA256),
		})
		if err != nil {
			t.Fatal(err)
		}
		if got["X-Amz-Date"] != "20300102T020405Z" || !strings.Contains(got["Authorization"], "/20300102/us-east-1/service/aws4_request,") {
			t.Errorf("not signed at the injected time (in UTC): %v", got)
		}
		wantCreq := "PUT\n/a%252Fb/c\nb=2&x=1\nhost:api.example.com\nx-amz-date:20300102T020405Z\nx-custom:v w\n\nhost;x-amz-date;x-custom\n" + emptySHA256
		if log.creq != wantCreq {
			t.Errorf("canonical request\n got: %q\nwant: %q", log.creq, wantCreq)
		}
	})

	t.Run("the API's own date and authorization header names", func(t *testing.T) {
		at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		renamed := *p
		renamed.now = func() time.Time { return at }
		renamed.dateHeader, renamed.authHeader = "X-DCI-Date", "X-DCI-Auth"
		req := providers.SignRequest{Method: "POST", URL: "https://api.example.com/jobs"}
		got, err := renamed.Sign(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got["X-Dci-Date"] != "20300102T030405Z" || got["X-Amz-Date"] != got["X-Dci-Date"] || got["Authorization"] != "" {
			t.Fatalf("headers %v: want the time in X-Dci-Date and X-Amz-Date, the signature under X-Dci-Auth only", got)
		}
		if !strings.Contains(log.creq, "\nx-dci-date:20300102T030405Z\n") || !strings.Contains(got["X-Dci-Auth"], "SignedHeaders=host;x-amz-date;x-dci-date,") {
			t.Errorf("the API's date header is not signed: %q / %q", log.creq, got["X-Dci-Auth"])
		}
		// It is plain SigV4 of the request as sent, with the API's date header on it.
		plain := *p
		plain.now = renamed.now
		req.Headers = map[string]string{"X-DCI-Date": got["X-Dci-Date"]}
		want, err := plain.Sign(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got["X-Dci-Auth"] != want["Authorization"] {
			t.Errorf("renamed signature %q differs from SigV4's %q", got["X-Dci-Auth"], want["Authorization"])
		}
	})

	t.Run("a Host header stands for the URL's host", func(t *testing.T) {
		if _, err := p.Sign(ctx, providers.SignRequest{Method: "GET", URL: "http://10.0.0.1:8080/", Headers: map[string]string{"host": "api.example.com"}}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.creq, "\nhost:api.example.com\n") || strings.Contains(log.creq, "10.0.0.1") {
			t.Errorf("canonical request %q: want host api.example.com only", log.creq)
		}
	})

	for _, tc := range []struct {
		name string
		req  providers.SignRequest
	}{
		{"relative URL", providers.SignRequest{URL: "/path"}},
		{"ftp URL", providers.SignRequest{URL: "ftp://example.com/"}},
		{"bad method", providers.SignRequest{Method: "GET /", URL: "https://example.com/"}},
		{"short body hash", providers.SignRequest{URL: "https://example.com/", BodySHA256: "abc"}},
		{"body hash not hex", providers.SignRequest{URL: "https://example.com/", BodySHA256: strings.Repeat("z", 64)}},
		{"bad header name", providers.SignRequest{URL: "https://example.com/", Headers: map[string]string{"X Y": "1"}}},
		{"header value with a line break", providers.SignRequest{URL: "https://example.com/", Headers: map[string]string{"X-Y": "1\r\nEvil: 2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.Sign(ctx, tc.req)
			if err == nil {
				t.Fatalf("signed %+v: %v", tc.req, got)
			}
			if errors.Is(err, providers.ErrNeedsLogin) || strings.Contains(err.Error(), secret) {
				t.Errorf("got %v", err)
			}
		})
	}
}

func TestSigV4NoSecret(t *testing.T) {
	p, err := New(&providers.ProfileConfig{Provider: Name, Mode: "sigv4", KeyID: "AKID", Region: "r", Service: "s"},
		providers.Env{Name: "dci", Secrets: secrets{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = p.Fetch(ctx)
	if !errors.Is(err, providers.ErrNeedsLogin) || !strings.Contains(err.Error(), "authagent set-secret dci") {
		t.Errorf("Fetch: got %v, want ErrNeedsLogin that says how to store the secret", err)
	}
	_, err = p.(providers.Signer).Sign(ctx, providers.SignRequest{Method: "GET", URL: "https://example.com/"})
	if !errors.Is(err, providers.ErrNeedsLogin) {
		t.Errorf("Sign: got %v, want ErrNeedsLogin", err)
	}
}

func TestSigV4Fetch(t *testing.T) {
	p, err := New(&providers.ProfileConfig{Provider: Name, Mode: "sigv4", KeyID: "AKID", Region: "r", Service: "s"},
		providers.Env{Name: "dci", Secrets: secrets{"secret": "S"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := &providers.Credential{Headers: map[string]string{}, Metadata: map[string]string{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("credential of a signing profile (-want +got):\n%s", diff)
	}
}
