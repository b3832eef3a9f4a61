package idp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// wrappedStorage is zitadel/oidc's example storage with the changes this
// package needs. The example storage keeps doing the bookkeeping of clients,
// users, device authorizations and tokens; the wrapper adds:
//
//   - a public client that may use the device_code, authorization_code (with
//     PKCE, loopback redirects) and refresh_token grants (deviceClient), whose
//     ID tokens live Options.IDTokenLifetime;
//   - refresh tokens for device logins: the example records them without a
//     client id, so the client could never refresh them; the wrapper hands
//     the example a refresh-token-shaped request that carries the client id;
//   - access-token lifetimes from Options (the example fixes 5 min), checked
//     by userinfo and introspection;
//   - grants: every refresh token belongs to the grant of one device login;
//     a rotated token presented again revokes the grant (reuse detection);
//   - single-use device codes and race-free device state;
//   - a confidential service client for the client credentials grant, in
//     place of the example's fixed "sid1"/"verysecret" service user;
//   - OAuth 2.0 Token Exchange (RFC 8693) for that service client, with a
//     policy of its own in place of the example's (which lets only admins
//     impersonate): any live subject token of this provider may be traded
//     for an access or ID token with the audience, resource and scopes asked
//     for; a subject access token that expired or was revoked is refused
//     with invalid_request (RFC 8693 §2.2.2). The op package does the
//     protocol: parsing, client authentication, verifying the subject token.
type wrappedStorage struct {
	*storage.Storage
	opts          Options
	serviceSecret string // of the service client opts.ServiceClientID

	devMu    sync.Mutex                              // guards device state, which the example hands out by pointer
	consumed map[string]bool                         // device codes already exchanged for tokens
	approved map[*op.DeviceAuthorizationState]string // approved states handed to the op → device code

	mu        sync.Mutex // guards everything below
	refresh   map[string]*refreshInfo
	access    map[string]*accessInfo
	reuses    int
	revoked   int
	service   []IssuedToken // access tokens issued to the service client, in order
	exchanges []Exchange    // token exchanges granted, in order
}

// Exchange is one token exchange the provider granted.
type Exchange struct {
	ClientID           string
	Subject            string   // the subject token's subject (the user)
	SubjectTokenType   string   // as the client sent it
	RequestedTokenType string   // as the client sent it, or access_token when it sent none
	Audience           []string // as the client sent it
	Resource           []string
	Scopes             []string
	Issued, Expires    time.Time // of the access token issued; zero for an ID token
}

// IssuedToken is when an access token was issued and when it expires.
type IssuedToken struct {
	Issued, Expires time.Time
}

// grant is the family of refresh and access tokens descended from one device
// login.
type grant struct {
	current string // the live refresh token; "" once revoked
	revoked bool
}

type refreshInfo struct {
	g        *grant
	rotated  bool // a newer refresh token replaced this one
	userID   string
	clientID string
}

type accessInfo struct {
	g        *grant // nil for tokens issued without a refresh token
	exp      time.Time
	subject  string
	clientID string
	scopes   []string
	revoked  bool
}

var (
	_ op.Storage                    = (*wrappedStorage)(nil)
	_ op.DeviceAuthorizationStorage = (*wrappedStorage)(nil)
	_ op.ClientCredentialsStorage   = (*wrappedStorage)(nil)
	_ op.TokenExchangeStorage       = (*wrappedStorage)(nil)
	_ exampleop.Storage             = (*wrappedStorage)(nil)
)

func newWrappedStorage(inner *storage.Storage, opts Options, serviceSecret string) *wrappedStorage {
	return &wrappedStorage{
		Storage:       inner,
		opts:          opts,
		serviceSecret: serviceSecret,
		consumed:      make(map[string]bool),
		approved:      make(map[*op.DeviceAuthorizationState]string),
		refresh:       make(map[string]*refreshInfo),
		access:        make(map[string]*accessInfo),
	}
}

// accessExpiry is when an access token issued now expires. Half a second is
// added so that expires_in, which the op package truncates to whole seconds,
// equals AccessTokenLifetime.
func (s *wrappedStorage) accessExpiry() time.Time {
	return time.Now().Add(s.opts.AccessTokenLifetime + 500*time.Millisecond)
}

// exchangeExpiry is accessExpiry for an access token issued by a token
// exchange: it lives ExchangedTokenLifetime.
func (s *wrappedStorage) exchangeExpiry() time.Time {
	return time.Now().Add(s.opts.ExchangedTokenLifetime + 500*time.Millisecond)
}

func (s *wrappedStorage) clientIDOf(r op.TokenRequest) string {
	if c, ok := r.(interface{ GetClientID() string }); ok {
		return c.GetClientID()
	}
	if _, ok := r.(*oidc.JWTTokenRequest); ok && r.GetSubject() == s.opts.ServiceClientID {
		// A client credentials request (ClientCredentialsTokenRequest): the
		// client is its own subject.
		return s.opts.ServiceClientID
	}
	return ""
}

// --- clients ---

type deviceClient struct {
	op.Client
	jwt         bool
	idTokenLife time.Duration
}

func (c deviceClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeDeviceCode, oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

func (c deviceClient) IDTokenLifetime() time.Duration { return c.idTokenLife }

func (c deviceClient) AccessTokenType() op.AccessTokenType {
	if c.jwt {
		return op.AccessTokenTypeJWT
	}
	return op.AccessTokenTypeBearer
}

func (s *wrappedStorage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	if clientID == s.opts.ServiceClientID {
		return s.serviceClient(), nil // token exchange looks its client up
	}
	c, err := s.Storage.GetClientByClientID(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if clientID == s.opts.ClientID {
		return deviceClient{Client: c, jwt: s.opts.JWTAccessTokens, idTokenLife: s.opts.IDTokenLifetime}, nil
	}
	return c, nil
}

// serviceClient is the confidential client of the client credentials grant.
type serviceClient struct {
	op.Client
	jwt bool
}

func (c serviceClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeClientCredentials, oidc.GrantTypeTokenExchange}
}

func (c serviceClient) AccessTokenType() op.AccessTokenType {
	if c.jwt {
		return op.AccessTokenTypeJWT
	}
	return op.AccessTokenTypeBearer
}

func (s *wrappedStorage) serviceClient() op.Client {
	// The example's web client is confidential (HTTP Basic); only its id,
	// secret and auth method matter here.
	return serviceClient{Client: storage.WebClient(s.opts.ServiceClientID, s.serviceSecret), jwt: s.opts.JWTAccessTokens}
}

// ClientCredentials authenticates the service client (op.ClientCredentialsStorage).
// An error becomes invalid_client (401) at the token endpoint.
func (s *wrappedStorage) ClientCredentials(ctx context.Context, clientID, clientSecret string) (op.Client, error) {
	idOK := subtle.ConstantTimeCompare([]byte(clientID), []byte(s.opts.ServiceClientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(clientSecret), []byte(s.serviceSecret)) == 1
	if !idOK || !secretOK {
		return nil, errors.New("wrong client id or client secret")
	}
	return s.serviceClient(), nil
}

// AuthorizeClientIDSecret authenticates a confidential client by id and
// secret, as the token exchange does: the service client here, the
// example's clients there.
func (s *wrappedStorage) AuthorizeClientIDSecret(ctx context.Context, clientID, clientSecret string) error {
	if clientID == s.opts.ServiceClientID {
		if _, err := s.ClientCredentials(ctx, clientID, clientSecret); err != nil {
			return err
		}
		return nil
	}
	return s.Storage.AuthorizeClientIDSecret(ctx, clientID, clientSecret)
}

// ClientCredentialsTokenRequest describes the token the service client gets:
// the client is its own subject and audience.
func (s *wrappedStorage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	if clientID != s.opts.ServiceClientID {
		return nil, oidc.ErrInvalidClient().WithDescription("not a service client")
	}
	return &oidc.JWTTokenRequest{
		Subject:  clientID,
		Audience: []string{clientID},
		Scopes:   slices.Clone(scopes),
		IssuedAt: oidc.FromTime(time.Now()),
	}, nil
}

// --- token exchange (RFC 8693) ---

// ValidateTokenExchangeRequest is this provider's exchange policy (the op
// package has authenticated the client and verified the subject token by
// then): only the service client may exchange; an access token as subject
// must still be live here; the token type asked for defaults to an access
// token. Errors are RFC 8693 §2.2.2's.
func (s *wrappedStorage) ValidateTokenExchangeRequest(ctx context.Context, request op.TokenExchangeRequest) error {
	if request.GetClientID() != s.opts.ServiceClientID {
		return oidc.ErrUnauthorizedClient().WithDescription("only the service client may exchange tokens")
	}
	if request.GetRequestedTokenType() == "" {
		request.SetRequestedTokenType(oidc.AccessTokenType)
	}
	switch request.GetRequestedTokenType() {
	case oidc.AccessTokenType, oidc.IDTokenType:
	default:
		return oidc.ErrInvalidRequest().WithDescription("requested_token_type: only access_token and id_token are issued")
	}
	if request.GetExchangeSubjectTokenType() == oidc.AccessTokenType {
		if _, err := s.activeAccess(request.GetExchangeSubjectTokenIDOrToken()); err != nil {
			return oidc.ErrInvalidRequest().WithDescription("subject_token: %s", err)
		}
	}
	request.SetCurrentScopes(slices.Clone(request.GetScopes()))
	return nil
}

// CreateTokenExchangeRequest records the exchange the op package is about to
// grant.
func (s *wrappedStorage) CreateTokenExchangeRequest(ctx context.Context, request op.TokenExchangeRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exchanges = append(s.exchanges, Exchange{
		ClientID:           request.GetClientID(),
		Subject:            request.GetExchangeSubject(),
		SubjectTokenType:   string(request.GetExchangeSubjectTokenType()),
		RequestedTokenType: string(request.GetRequestedTokenType()),
		Audience:           slices.Clone(request.GetAudience()),
		Resource:           slices.Clone(request.GetResourses()),
		Scopes:             slices.Clone(request.GetScopes()),
	})
	return nil
}

// --- tokens ---

func (s *wrappedStorage) CreateAccessToken(ctx context.Context, request op.TokenRequest) (string, time.Time, error) {
	if err := s.consumeDeviceCode(request); err != nil {
		return "", time.Time{}, err
	}
	id, _, err := s.Storage.CreateAccessToken(ctx, request)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := s.accessExpiry()
	_, exchanged := request.(op.TokenExchangeRequest)
	if exchanged {
		exp = s.exchangeExpiry()
	}
	clientID := s.clientIDOf(request)
	s.mu.Lock()
	s.access[id] = &accessInfo{exp: exp, subject: request.GetSubject(), clientID: clientID, scopes: request.GetScopes()}
	switch {
	case exchanged && len(s.exchanges) > 0:
		last := &s.exchanges[len(s.exchanges)-1] // recorded by CreateTokenExchangeRequest just before
		last.Issued, last.Expires = time.Now(), exp
	case clientID == s.opts.ServiceClientID:
		s.service = append(s.service, IssuedToken{Issued: time.Now(), Expires: exp})
	}
	s.mu.Unlock()
	return id, exp, nil
}

func (s *wrappedStorage) CreateAccessAndRefreshTokens(ctx context.Context, request op.TokenRequest, currentRefreshToken string) (string, string, time.Time, error) {
	if currentRefreshToken == "" {
		return s.createGrant(ctx, request)
	}

	// Refresh: held across the example's rotation, so that two requests
	// with the same refresh token cannot both rotate it.
	s.mu.Lock()
	defer s.mu.Unlock()
	info := s.refresh[currentRefreshToken]
	switch {
	case info == nil:
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("unknown refresh token")
	case info.rotated:
		s.reuses++
		s.revokeGrantLocked(info)
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token reused; grant revoked")
	case info.g.revoked:
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("grant revoked")
	}
	atID, rt, _, err := s.Storage.CreateAccessAndRefreshTokens(ctx, request, currentRefreshToken)
	if err != nil {
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithParent(err)
	}
	info.rotated = true
	info.g.current = rt
	s.refresh[rt] = &refreshInfo{g: info.g, userID: info.userID, clientID: info.clientID}
	exp := s.accessExpiry()
	s.access[atID] = &accessInfo{g: info.g, exp: exp, subject: request.GetSubject(), clientID: info.clientID, scopes: request.GetScopes()}
	return atID, rt, exp, nil
}

// createGrant issues the first access and refresh token of a grant.
func (s *wrappedStorage) createGrant(ctx context.Context, request op.TokenRequest) (string, string, time.Time, error) {
	if err := s.consumeDeviceCode(request); err != nil {
		return "", "", time.Time{}, err
	}
	clientID := s.clientIDOf(request)
	req := request
	if st, ok := request.(*op.DeviceAuthorizationState); ok {
		// The example derives the client of a new refresh token from the
		// request type and knows no device requests; describe the device
		// login the way it describes a refresh request.
		req = storage.RefreshTokenRequestFromBusiness(&storage.RefreshToken{
			ApplicationID: st.ClientID,
			UserID:        st.Subject,
			Audience:      slices.Clone(st.GetAudience()),
			Scopes:        slices.Clone(st.Scopes),
			AuthTime:      st.AuthTime,
			AMR:           slices.Clone(st.AMR),
		})
	}
	atID, rt, _, err := s.Storage.CreateAccessAndRefreshTokens(ctx, req, "")
	if err != nil {
		return "", "", time.Time{}, err
	}
	exp := s.accessExpiry()
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &grant{current: rt}
	s.refresh[rt] = &refreshInfo{g: g, userID: request.GetSubject(), clientID: clientID}
	s.access[atID] = &accessInfo{g: g, exp: exp, subject: request.GetSubject(), clientID: clientID, scopes: request.GetScopes()}
	return atID, rt, exp, nil
}

// revokeGrantLocked revokes the grant of info: its live refresh token and,
// through the grant, every access token issued from it.
func (s *wrappedStorage) revokeGrantLocked(info *refreshInfo) {
	g := info.g
	if g.revoked {
		return
	}
	g.revoked = true
	if g.current != "" {
		_ = s.Storage.RevokeToken(context.Background(), g.current, info.userID, info.clientID)
		g.current = ""
	}
}

func (s *wrappedStorage) TokenRequestByRefreshToken(ctx context.Context, refreshToken string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	info := s.refresh[refreshToken]
	switch {
	case info == nil:
		s.mu.Unlock()
		return nil, errors.New("unknown refresh token")
	case info.rotated:
		s.reuses++
		s.revokeGrantLocked(info)
		s.mu.Unlock()
		return nil, errors.New("refresh token reused; grant revoked")
	case info.g.revoked:
		s.mu.Unlock()
		return nil, errors.New("grant revoked")
	}
	s.mu.Unlock()
	return s.Storage.TokenRequestByRefreshToken(ctx, refreshToken)
}

// GetRefreshTokenInfo is used by the revocation endpoint. (The example's
// version reads its map without its lock.)
func (s *wrappedStorage) GetRefreshTokenInfo(ctx context.Context, clientID string, token string) (userID string, tokenID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := s.refresh[token]
	if info == nil || info.rotated || info.g.revoked {
		return "", "", op.ErrInvalidRefreshToken
	}
	return info.userID, token, nil
}

func (s *wrappedStorage) RevokeToken(ctx context.Context, tokenIDOrToken string, userID string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info := s.refresh[tokenIDOrToken]; info != nil && !info.rotated && !info.g.revoked {
		if info.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued for this client")
		}
		s.revokeGrantLocked(info)
		s.revoked++
		return nil
	}
	if a := s.access[tokenIDOrToken]; a != nil {
		if a.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued for this client")
		}
		a.revoked = true
		return nil
	}
	return s.Storage.RevokeToken(ctx, tokenIDOrToken, userID, clientID)
}

// activeAccess returns the record of an access token the provider honours.
func (s *wrappedStorage) activeAccess(tokenID string) (accessInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.access[tokenID]
	switch {
	case a == nil:
		return accessInfo{}, errors.New("token is invalid")
	case a.revoked || (a.g != nil && a.g.revoked):
		return accessInfo{}, errors.New("token was revoked")
	case time.Now().After(a.exp):
		return accessInfo{}, errors.New("token has expired")
	}
	return *a, nil
}

func (s *wrappedStorage) SetUserinfoFromToken(ctx context.Context, userinfo *oidc.UserInfo, tokenID, subject, origin string) error {
	a, err := s.activeAccess(tokenID)
	if err != nil {
		return err
	}
	if a.subject == s.opts.ServiceClientID {
		userinfo.Subject = a.subject // a service has no profile, only a name
		return nil
	}
	if err := s.Storage.SetUserinfoFromRequest(ctx, userinfo, &op.DeviceAuthorizationState{ClientID: a.clientID, Subject: a.subject}, a.scopes); err != nil {
		return err
	}
	// The example names the subject only for the openid scope; a token exchanged
	// without scopes is the user's all the same.
	userinfo.Subject = a.subject
	return nil
}

func (s *wrappedStorage) SetIntrospectionFromToken(ctx context.Context, introspection *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	a, err := s.activeAccess(tokenID)
	if err != nil {
		return err
	}
	userinfo := new(oidc.UserInfo)
	if a.subject == s.opts.ServiceClientID {
		userinfo.Subject = a.subject
	} else if err := s.Storage.SetUserinfoFromRequest(ctx, userinfo, &op.DeviceAuthorizationState{ClientID: a.clientID, Subject: a.subject}, a.scopes); err != nil {
		return err
	}
	introspection.SetUserInfo(userinfo)
	introspection.Scope = a.scopes
	introspection.ClientID = a.clientID
	introspection.Expiration = oidc.FromTime(a.exp)
	return nil
}

// --- device authorization ---

func (s *wrappedStorage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	s.devMu.Lock()
	defer s.devMu.Unlock()
	st, err := s.Storage.GetDeviceAuthorizatonState(ctx, clientID, deviceCode)
	if err != nil {
		return nil, err
	}
	if s.consumed[deviceCode] {
		return nil, errors.New("device code already used")
	}
	cp := *st
	cp.Audience = slices.Clone(st.Audience)
	cp.Scopes = slices.Clone(st.Scopes)
	cp.AMR = slices.Clone(st.AMR)
	if cp.Done && !cp.Denied {
		s.approved[&cp] = deviceCode
	}
	return &cp, nil
}

// consumeDeviceCode makes the device code behind an approved state single
// use. It is called when tokens are created, not when the state is read: the
// op package reads the state before it authenticates the client, and a
// request that then fails (x/oauth2's AuthStyleAutoDetect first tries HTTP
// Basic auth, which the op rejects for public clients) must not spend the
// code.
func (s *wrappedStorage) consumeDeviceCode(request op.TokenRequest) error {
	st, ok := request.(*op.DeviceAuthorizationState)
	if !ok {
		return nil
	}
	s.devMu.Lock()
	defer s.devMu.Unlock()
	code, ok := s.approved[st]
	if !ok {
		return nil
	}
	delete(s.approved, st)
	if s.consumed[code] {
		return oidc.ErrInvalidGrant().WithDescription("device code already used")
	}
	s.consumed[code] = true
	return nil
}

func (s *wrappedStorage) pendingUserCode(ctx context.Context, userCode string) error {
	st, err := s.Storage.GetDeviceAuthorizationByUserCode(ctx, userCode)
	if err != nil {
		return err
	}
	if st.Done || st.Denied {
		return errors.New("user code already used")
	}
	if time.Now().After(st.Expires) {
		return errors.New("user code expired")
	}
	return nil
}

func (s *wrappedStorage) CompleteDeviceAuthorization(ctx context.Context, userCode, subject string) error {
	s.devMu.Lock()
	defer s.devMu.Unlock()
	if err := s.pendingUserCode(ctx, userCode); err != nil {
		return err
	}
	if err := s.Storage.CompleteDeviceAuthorization(ctx, userCode, subject); err != nil {
		return err
	}
	st, err := s.Storage.GetDeviceAuthorizationByUserCode(ctx, userCode)
	if err != nil {
		return err
	}
	st.AuthTime = time.Now()
	st.AMR = []string{"pwd"}
	return nil
}

func (s *wrappedStorage) DenyDeviceAuthorization(ctx context.Context, userCode string) error {
	s.devMu.Lock()
	defer s.devMu.Unlock()
	if err := s.pendingUserCode(ctx, userCode); err != nil {
		return err
	}
	return s.Storage.DenyDeviceAuthorization(ctx, userCode)
}

// --- counters and controls ---

func (s *wrappedStorage) reuseDetected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reuses
}

func (s *wrappedStorage) tokenExchanges() []Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.exchanges)
	for i := range out {
		out[i].Audience = slices.Clone(out[i].Audience)
		out[i].Resource = slices.Clone(out[i].Resource)
		out[i].Scopes = slices.Clone(out[i].Scopes)
	}
	return out
}

func (s *wrappedStorage) serviceTokens() []IssuedToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.service)
}

func (s *wrappedStorage) revokedRefreshTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revoked
}

func (s *wrappedStorage) activeGrants() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, info := range s.refresh {
		if !info.rotated && !info.g.revoked {
			n++
		}
	}
	return n
}

func (s *wrappedStorage) forgetGrants() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, info := range s.refresh {
		if !info.rotated && !info.g.revoked {
			_ = s.Storage.RevokeToken(context.Background(), tok, info.userID, info.clientID)
		}
	}
	s.refresh = make(map[string]*refreshInfo)
}

// --- users ---

// userStore implements the example storage's UserStore.
type userStore struct {
	users map[string]*storage.User // by ID
}

func (u userStore) GetUserByID(id string) *storage.User { return u.users[id] }

func (u userStore) GetUserByUsername(name string) *storage.User {
	for _, user := range u.users {
		if user.Username == name {
			return user
		}
	}
	return nil
}

func (u userStore) ExampleClientID() string { return "service" }

// randomSecret is a client secret with characters that need escaping in
// HTTP Basic auth (RFC 6749 section 2.3.1 form-encodes id and secret first).
func randomSecret(t testing.TB) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("idp: random secret: %v", err)
	}
	return "s3cr+t/" + base64.RawURLEncoding.EncodeToString(b) + "=%:"
}

func randomKey(t testing.TB) [32]byte {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatalf("idp: random key: %v", err)
	}
	return k
}
