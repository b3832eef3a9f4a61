package credhelper

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"
)

// CurlConfig renders headers as a curl config file (curl -K): one header line each,
// quoted and escaped as curl's config syntax wants.
func CurlConfig(headers map[string]string) (string, error) {
	var b strings.Builder
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\t", `\t`)
	for _, k := range sortedKeys(headers) {
		line := k + ": " + headers[k]
		if strings.ContainsAny(line, "\r\n\x00") {
			return "", fmt.Errorf("header %s holds a line break or NUL", k)
		}
		fmt.Fprintf(&b, "header = \"%s\"\n", r.Replace(line))
	}
	return b.String(), nil
}

// HeaderLines renders headers as sorted "Name: value" lines, the form curl -H @- reads.
func HeaderLines(headers map[string]string) (string, error) {
	var b strings.Builder
	for _, k := range sortedKeys(headers) {
		if strings.ContainsAny(k+headers[k], "\r\n\x00") {
			return "", fmt.Errorf("header %s holds a line break or NUL", k)
		}
		fmt.Fprintf(&b, "%s: %s\n", k, headers[k])
	}
	return b.String(), nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// DockerServerURL turns what Docker passes a helper ("registry.example.com",
// "https://index.docker.io/v1/") into a URL for choosing a profile.
func DockerServerURL(server string) string {
	if strings.Contains(server, "://") {
		return server
	}
	return (&url.URL{Scheme: "https", Host: server, Path: "/"}).String()
}

// ExecCredential is kubectl's client.authentication.k8s.io/v1 ExecCredential.
type ExecCredential struct {
	APIVersion string               `json:"apiVersion"`
	Kind       string               `json:"kind"`
	Spec       ExecCredentialSpec   `json:"spec"`
	Status     *ExecCredentialState `json:"status,omitempty"`
}

// ExecCredentialSpec is what kubectl passes in KUBERNETES_EXEC_INFO.
type ExecCredentialSpec struct {
	Interactive bool `json:"interactive"`
	// Cluster is sent when the kubeconfig sets provideClusterInfo: true.
	Cluster *struct {
		Server string `json:"server"`
	} `json:"cluster,omitempty"`
}

// ExecCredentialState carries the token.
type ExecCredentialState struct {
	Token               string     `json:"token"`
	ExpirationTimestamp *time.Time `json:"expirationTimestamp,omitempty"`
}

// ExecCredentialAPIVersion is the version authagent answers in.
const ExecCredentialAPIVersion = "client.authentication.k8s.io/v1"

// ParseExecInfo reads KUBERNETES_EXEC_INFO: the ExecCredential kubectl sends, whose
// apiVersion the answer must repeat. An empty value means kubectl did not send one (run by
// hand), which counts as interactive and v1.
func ParseExecInfo(raw string) (ExecCredential, error) {
	if raw == "" {
		return ExecCredential{APIVersion: ExecCredentialAPIVersion, Kind: "ExecCredential", Spec: ExecCredentialSpec{Interactive: true}}, nil
	}
	var ec ExecCredential
	if err := json.Unmarshal([]byte(raw), &ec); err != nil {
		return ExecCredential{}, fmt.Errorf("KUBERNETES_EXEC_INFO is not an ExecCredential: %w", err)
	}
	switch ec.APIVersion {
	case "":
		ec.APIVersion = ExecCredentialAPIVersion
	case ExecCredentialAPIVersion, "client.authentication.k8s.io/v1beta1":
	default:
		return ExecCredential{}, fmt.Errorf("KUBERNETES_EXEC_INFO asks for %s; authagent speaks client.authentication.k8s.io/v1 and v1beta1", ec.APIVersion)
	}
	return ec, nil
}

// WriteExecCredential writes the answer kubectl reads from an exec plugin, in the
// apiVersion kubectl asked for.
func WriteExecCredential(w io.Writer, apiVersion, token string, expires time.Time) error {
	st := &ExecCredentialState{Token: token}
	if !expires.IsZero() {
		t := expires.UTC().Truncate(time.Second)
		st.ExpirationTimestamp = &t
	}
	if apiVersion == "" {
		apiVersion = ExecCredentialAPIVersion
	}
	return json.NewEncoder(w).Encode(ExecCredential{APIVersion: apiVersion, Kind: "ExecCredential", Status: st})
}

// DockerCredential is one credential in the Docker credential helper protocol.
type DockerCredential struct {
	ServerURL string `json:"ServerURL,omitempty"`
	Username  string `json:"Username"`
	Secret    string `json:"Secret"`
}

// DockerNotFound is the message Docker expects on stdout (exit 1) when a helper has no
// credential for a server.
const DockerNotFound = "credentials not found in native keychain"

// BazelRequest is the Bazel credential helper spec's request.
type BazelRequest struct {
	URI string `json:"uri"`
}

// ReadBazelRequest reads the request Bazel writes on a helper's stdin (at most 1 MiB): one
// JSON object whose uri is an absolute URL. Unknown keys are ignored, as the spec asks.
func ReadBazelRequest(r io.Reader) (BazelRequest, error) {
	var req BazelRequest
	if err := json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&req); err != nil {
		return BazelRequest{}, fmt.Errorf("read request: want {\"uri\": \"https://…\"}: %w", err)
	}
	if u, err := url.Parse(req.URI); err != nil || u.Scheme == "" || u.Host == "" {
		return BazelRequest{}, fmt.Errorf("read request: uri %.80q is not an absolute URL", req.URI)
	}
	return req, nil
}

// BazelResponse is the Bazel credential helper spec's answer: headers with one or more
// values each, and when they stop being valid.
type BazelResponse struct {
	Headers map[string][]string `json:"headers"`
	Expires string              `json:"expires,omitempty"`
}

// NewBazelResponse builds the answer from a credential's headers.
func NewBazelResponse(headers map[string]string, expires time.Time) BazelResponse {
	r := BazelResponse{Headers: make(map[string][]string, len(headers))}
	for k, v := range headers {
		r.Headers[k] = []string{v}
	}
	if !expires.IsZero() {
		r.Expires = expires.UTC().Format(time.RFC3339)
	}
	return r
}
