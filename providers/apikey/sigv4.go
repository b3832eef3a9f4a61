package apikey

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/authagent/authagent/providers"
)

// emptySHA256 is the hex SHA-256 of an empty body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// scopePartRE is what a region or service may hold: they go into the credential scope
// "date/region/service/aws4_request" of the Authorization header.
var scopePartRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._-]+$`) })

// SigV4 signs requests with the AWS Signature Version 4 algorithm, using the key id as the
// access key id and the stored secret as the secret access key. The secret never leaves the
// agent: callers get the headers to add to their request.
//
// The signature is the AWS one throughout: algorithm AWS4-HMAC-SHA256, the date in
// X-Amz-Date, the key derived from "AWS4"+secret, the scope ending in aws4_request. DCI
// (python-dciauth) verifies exactly this form as well as its own DCI2-named variant, so a DCI
// remoteci is a sigv4 profile with key_id "remoteci/<id>".
type SigV4 struct {
	profile string
	keyID   string
	region  string
	service string
	// dateHeader, when set, carries the signing time as well as X-Amz-Date and is signed
	// with it; authHeader is where the Authorization value goes.
	dateHeader string
	authHeader string
	secrets    providers.Secrets
	now        func() time.Time
	signer     *v4.Signer
}

func newSigV4(cfg *providers.ProfileConfig, env providers.Env) (*SigV4, error) {
	if err := providers.CheckKeys(cfg, Name+" (mode "+modeSigV4+")", "mode", "key_id", "region", "service", "date_header", "auth_header"); err != nil {
		return nil, err
	}
	switch {
	case cfg.KeyID == "":
		return nil, &providers.ConfigError{Key: "key_id", Message: "required: the access key id (for DCI, \"remoteci/<id>\"); the profile's secret is the secret key"}
	case strings.ContainsAny(cfg.KeyID, " ,") || providers.HasControl(cfg.KeyID):
		return nil, &providers.ConfigError{Key: "key_id", Message: "must not contain spaces, commas or control characters: it is sent in the Authorization header"}
	}
	for key, v := range map[string]string{"region": cfg.Region, "service": cfg.Service} {
		if v == "" {
			return nil, &providers.ConfigError{Key: key, Message: "required: it is part of the signature's credential scope (e.g. region = \"us-east-1\", service = \"execute-api\")"}
		}
		if !scopePartRE().MatchString(v) {
			return nil, &providers.ConfigError{Key: key, Message: fmt.Sprintf("%q: use letters, digits, '.', '_' and '-' only", v)}
		}
	}
	for key, v := range map[string]string{"date_header": cfg.DateHeader, "auth_header": cfg.AuthHeader} {
		if v != "" && !headerNameRE().MatchString(v) {
			return nil, &providers.ConfigError{Key: key, Message: fmt.Sprintf("%q is not a valid HTTP header name", v)}
		}
	}
	if cfg.DateHeader != "" && (strings.EqualFold(cfg.DateHeader, cfg.AuthHeader) || strings.EqualFold(cfg.DateHeader, "Authorization")) {
		return nil, &providers.ConfigError{Key: "date_header", Message: "must differ from the authorization header"}
	}
	p := &SigV4{
		profile:    env.Name,
		keyID:      cfg.KeyID,
		region:     cfg.Region,
		service:    cfg.Service,
		dateHeader: cfg.DateHeader,
		authHeader: cfg.AuthHeader,
		secrets:    env.Secrets,
		now:        env.Now,
		signer:     v4.NewSigner(),
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// Fetch checks that the secret is stored. A signing profile has no token to hand out, so the
// credential is empty and never expires; it only tells the agent that the profile is usable.
// Local reports true: signing happens in the agent.
func (p *SigV4) Local() bool { return true }

func (p *SigV4) Fetch(ctx context.Context) (*providers.Credential, error) {
	if _, err := p.secret(ctx); err != nil {
		return nil, err
	}
	return &providers.Credential{Headers: map[string]string{}, Metadata: map[string]string{}}, nil
}

func (p *SigV4) secret(ctx context.Context) (string, error) {
	secret, err := p.secrets.Get(ctx, providers.SecretKey)
	if errors.Is(err, providers.ErrSecretNotFound) {
		return "", providers.Mark(providers.ErrNeedsLogin, fmt.Errorf("no secret key stored; store it with `authagent set-secret %s` (reads it from stdin)", p.profile))
	}
	if err != nil {
		return "", fmt.Errorf("read secret key: %w", err)
	}
	return secret, nil
}

// Sign returns the headers to add to the request described by req: Authorization and
// X-Amz-Date. Every header in req.Headers is signed (except those SigV4 leaves out, such as
// User-Agent), so the request must carry them with the same values. A Host header in
// req.Headers stands for the host the request is sent with; otherwise it is the URL's.
// The path is signed as it appears in the URL, which is how it goes on the wire; an empty
// BodySHA256 means an empty body. The signing time is the agent's clock.
func (p *SigV4) Sign(ctx context.Context, req providers.SignRequest) (map[string]string, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !headerNameRE().MatchString(method) {
		return nil, providers.Mark(providers.ErrInvalidRequest, fmt.Errorf("%q is not an HTTP method", method))
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, providers.Mark(providers.ErrInvalidRequest, fmt.Errorf("url must be an absolute http or https URL, got %q", req.URL))
	}
	payload := strings.ToLower(req.BodySHA256)
	if payload == "" {
		payload = emptySHA256
	} else if b, err := hex.DecodeString(payload); err != nil || len(b) != 32 {
		return nil, providers.Mark(providers.ErrInvalidRequest, errors.New("body_sha256 must be the SHA-256 of the request body in hex (64 digits)"))
	}
	hr := &http.Request{Method: method, URL: u, Host: u.Host, Header: make(http.Header, len(req.Headers))}
	for name, value := range req.Headers {
		if !headerNameRE().MatchString(name) {
			return nil, providers.Mark(providers.ErrInvalidRequest, fmt.Errorf("%q is not a valid HTTP header name", name))
		}
		if providers.HasControl(value) {
			return nil, providers.Mark(providers.ErrInvalidRequest, fmt.Errorf("the value of header %s holds a line break or another control character", name))
		}
		if strings.EqualFold(name, "Host") {
			hr.Host = value
			continue
		}
		hr.Header.Add(name, value)
	}
	secret, err := p.secret(ctx)
	if err != nil {
		return nil, err
	}
	creds := aws.Credentials{AccessKeyID: p.keyID, SecretAccessKey: secret}
	now := p.now().UTC()
	out := map[string]string{}
	if p.dateHeader != "" && !strings.EqualFold(p.dateHeader, "X-Amz-Date") {
		// The API reads the time from its own header: send it, signed like any other.
		stamp := now.Format("20060102T150405Z")
		hr.Header.Set(p.dateHeader, stamp)
		out[http.CanonicalHeaderKey(p.dateHeader)] = stamp
	}
	if err := p.signer.SignHTTP(ctx, creds, hr, payload, p.service, p.region, now); err != nil {
		return nil, fmt.Errorf("sign the request: %w", err)
	}
	auth := "Authorization"
	if p.authHeader != "" {
		auth = http.CanonicalHeaderKey(p.authHeader)
	}
	out[auth] = hr.Header.Get("Authorization")
	out["X-Amz-Date"] = hr.Header.Get("X-Amz-Date")
	return out, nil
}
