package ipc

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
)

// Transport is an http.RoundTripper that puts a profile's current headers on each request.
// With Profile empty, the profile is the one whose hosts match the request's host; either
// way the agent refuses to hand out a token for a host or scheme the profile does not allow.
// A 401 answer makes the agent drop the cached token, so the next request gets a fresh one;
// the request itself is not retried.
type Transport struct {
	Client  *Client           // nil: a zero Client
	Profile string            // empty: chosen by the request URL
	Base    http.RoundTripper // nil: http.DefaultTransport

	once     sync.Once
	fallback *Client
}

func (t *Transport) client() *Client {
	if t.Client != nil {
		return t.Client
	}
	t.once.Do(func() { t.fallback = &Client{} })
	return t.fallback
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	target := req.URL.String()
	var cred *Credential
	var err error
	if t.Profile != "" {
		cred, err = t.client().Credential(ctx, t.Profile, ForURL(target))
	} else {
		cred, err = t.client().CredentialForURL(ctx, target)
	}
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	r2 := req.Clone(ctx)
	for k, v := range cred.Headers {
		r2.Header.Set(k, v)
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r2)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		t.client().Reject(context.WithoutCancel(ctx), cred.Profile)
	}
	return resp, err
}

// PerRPCCredentials satisfies grpc-go's credentials.PerRPCCredentials without importing
// grpc: pass it to grpc.WithPerRPCCredentials. With Profile empty, the profile is chosen
// by the host of the RPC's authority.
type PerRPCCredentials struct {
	Client  *Client
	Profile string
	// AllowInsecure lets the metadata go over a connection without transport security
	// (tests, loopback). grpc-go refuses to send it otherwise.
	AllowInsecure bool

	once     sync.Once
	fallback *Client
}

// GetRequestMetadata returns the profile's gRPC metadata. uri is the RPC's
// "https://authority/Service" URI that grpc-go passes.
func (p *PerRPCCredentials) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	c := p.Client
	if c == nil {
		p.once.Do(func() { p.fallback = &Client{} })
		c = p.fallback
	}
	if len(uri) > 0 && p.AllowInsecure {
		// grpc-go writes https:// into the URI even on a plaintext connection; ask for
		// http:// so the agent's rule applies: plaintext only to loopback hosts.
		uri = append([]string{"http://" + strings.TrimPrefix(uri[0], "https://")}, uri[1:]...)
	}
	var cred *Credential
	var err error
	switch {
	case p.Profile != "" && len(uri) > 0:
		cred, err = c.Credential(ctx, p.Profile, ForURL(uri[0]))
	case p.Profile != "":
		cred, err = c.Credential(ctx, p.Profile)
	case len(uri) > 0:
		cred, err = c.CredentialForURL(ctx, uri[0])
	default:
		err = errors.New("authagent: PerRPCCredentials needs a Profile or an RPC URI")
	}
	if err != nil {
		return nil, err
	}
	return cred.GRPCMetadata, nil
}

// RequireTransportSecurity reports whether grpc-go must only send the metadata over TLS.
func (p *PerRPCCredentials) RequireTransportSecurity() bool { return !p.AllowInsecure }
