package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/authagent/authagent/ipc"
)

// tokenIssuer is what a resource server knows about the tokens a token service minted:
// which ones it has revoked. It accepts the minter's tokens that are not revoked.
type tokenIssuer struct {
	m       *minter
	mu      sync.Mutex
	revoked map[string]bool
	seen    []string // tokens presented, in order; "" for none
}

func (iss *tokenIssuer) check(tok string) bool {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.seen = append(iss.seen, tok)
	if tok == "" || iss.revoked[tok] || !strings.HasPrefix(tok, "tok-") || !strings.HasSuffix(tok, "-"+iss.m.salt) {
		return false
	}
	return true
}

func (iss *tokenIssuer) revoke(tok string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.revoked[tok] = true
}

func (iss *tokenIssuer) last() string {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	if len(iss.seen) == 0 {
		return ""
	}
	return iss.seen[len(iss.seen)-1]
}

func (iss *tokenIssuer) count() int {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return len(iss.seen)
}

// TestGoTransport uses ipc.Transport in a Go program's http.Client against a real net/http
// server that checks the header. The server refuses a token revoked at the issuer (401);
// the Transport tells the agent, and the next request carries a new token.
func TestGoTransport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	startAgent(t, e)
	iss := &tokenIssuer{m: addMintProfile(t, e, "svc", "--host", "127.0.0.1"), revoked: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !iss.check(bearerOf(r.Header.Get("Authorization"))) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)

	client := &ipc.Client{Socket: e.sock()}
	t.Cleanup(client.CloseIdleConnections)
	get := func(hc *http.Client) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/things", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for _, tr := range []*ipc.Transport{
		{Client: client, Profile: "svc"},
		{Client: client}, // the profile chosen by the URL's host
	} {
		name := tr.Profile
		if name == "" {
			name = "by URL"
		}
		t.Run(name, func(t *testing.T) {
			hc := &http.Client{Transport: tr}
			code, body := get(hc)
			if code != http.StatusOK || body != "ok" {
				t.Fatalf("first request: %d %q", code, body)
			}
			first := iss.last()
			if code, _ := get(hc); code != http.StatusOK || iss.last() != first {
				t.Errorf("second request: %d; want 200 with the same (cached) token", code)
			}

			// The issuer revokes the token the agent holds.
			iss.revoke(first)
			if code, _ := get(hc); code != http.StatusUnauthorized {
				t.Fatalf("request with the revoked token: %d, want 401", code)
			}
			if iss.last() != first {
				t.Fatal("the refused request did not carry the revoked token")
			}
			// The 401 made the Transport tell the agent: the next request has a new token.
			code, _ = get(hc)
			if code != http.StatusOK {
				t.Errorf("request after the 401: %d, want 200", code)
			}
			if iss.last() == first || iss.last() == "" {
				t.Error("the request after the 401 carried the revoked token again")
			}
		})
	}

	t.Run("host not in the profile", func(t *testing.T) {
		before := iss.count()
		hc := &http.Client{Transport: &ipc.Transport{Client: client, Profile: "svc"}}
		u := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
		resp, err := hc.Get(u + "/v1/things")
		if err == nil {
			resp.Body.Close()
			t.Errorf("a request to %s, outside the profile's hosts, was sent: %d", u, resp.StatusCode)
		}
		var ae *ipc.Error
		if !errors.As(err, &ae) || ae.Code != ipc.CodeForbidden {
			t.Errorf("error for a host outside the profile: %v; want the agent's forbidden", err)
		}
		if iss.count() != before {
			t.Error("the server saw a request for a host outside the profile's hosts")
		}
	})
}

// grpcServer is a real grpc-go server with the health service behind an interceptor that
// lets only "authorization: Bearer <valid token>" through.
type grpcServer struct {
	addr  string
	mu    sync.Mutex
	valid string
	seen  []string // authorization metadata of each RPC
}

func startGRPCServer(t *testing.T) *grpcServer {
	t.Helper()
	s := &grpcServer{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = lis.Addr().String()
	gs := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		got := strings.Join(md.Get("authorization"), ",")
		s.mu.Lock()
		s.seen = append(s.seen, got)
		valid := s.valid
		s.mu.Unlock()
		if valid == "" || got != "Bearer "+valid {
			return nil, status.Error(codes.Unauthenticated, "invalid token")
		}
		return handler(ctx, req)
	}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return s
}

func (s *grpcServer) accept(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.valid = tok
}

func (s *grpcServer) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 {
		return ""
	}
	return s.seen[len(s.seen)-1]
}

func (s *grpcServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func healthCheck(t *testing.T, addr string, creds *ipc.PerRPCCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(creds))
	if err != nil {
		return err // grpc-go refuses credentials that need TLS on an insecure connection here
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v", resp.GetStatus())
	}
	return err
}

// TestGRPCPerRPCCredentials calls a real grpc-go server with ipc.PerRPCCredentials. The
// server takes only the current token; a stale one gets codes.Unauthenticated; after a new
// token is pushed into the agent, the next RPC carries it.
func TestGRPCPerRPCCredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	startAgent(t, e)
	addPushProfile(t, e, "rpc", "--host", "127.0.0.1")
	tok1 := "rpc1-" + canary(t)
	pushToken(t, e, "rpc", tok1)
	srv := startGRPCServer(t)
	srv.accept(tok1)
	client := &ipc.Client{Socket: e.sock()}
	t.Cleanup(client.CloseIdleConnections)

	for _, creds := range []*ipc.PerRPCCredentials{
		{Client: client, Profile: "rpc", AllowInsecure: true},
		{Client: client, AllowInsecure: true}, // the profile chosen by the RPC's authority
	} {
		if err := healthCheck(t, srv.addr, creds); err != nil {
			t.Errorf("health check with profile %q: %v", creds.Profile, err)
		}
		if srv.last() != "Bearer "+tok1 {
			t.Errorf("profile %q: the server did not get the token as authorization metadata", creds.Profile)
		}
	}

	// The server moves on to a new token; the agent still has the old one: stale.
	tok2 := "rpc2-" + canary(t)
	srv.accept(tok2)
	creds := &ipc.PerRPCCredentials{Client: client, Profile: "rpc", AllowInsecure: true}
	err := healthCheck(t, srv.addr, creds)
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("health check with the stale token: %v, want code Unauthenticated", err)
	}
	if srv.last() != "Bearer "+tok1 {
		t.Error("the refused RPC did not carry the stale token")
	}
	// The new token is pushed into the agent; the next RPC carries it.
	pushToken(t, e, "rpc", tok2)
	if err := healthCheck(t, srv.addr, creds); err != nil {
		t.Errorf("health check after set-token: %v", err)
	}
	if srv.last() != "Bearer "+tok2 {
		t.Error("the RPC after set-token did not carry the new token")
	}

	// Without AllowInsecure grpc-go refuses to send the token over plain TCP.
	before := srv.count()
	err = healthCheck(t, srv.addr, &ipc.PerRPCCredentials{Client: client, Profile: "rpc"})
	if err == nil {
		t.Error("credentials that require transport security were sent over an insecure connection")
	}
	if srv.count() != before {
		t.Error("the server saw an RPC that should not have left the client")
	}
}

// TestGRPCCredentialsStayOnProfileHosts: DESIGN.md says a profile's token goes only to
// its hosts. ipc.Transport with a named profile enforces it (TestGoTransport, "host not in
// the profile"); ipc.PerRPCCredentials with a named profile must too.
func TestGRPCCredentialsStayOnProfileHosts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startSession(t))
	startAgent(t, e)
	addPushProfile(t, e, "prod", "--host", "api.example.com")
	tok := "prod-" + canary(t)
	pushToken(t, e, "prod", tok)
	srv := startGRPCServer(t)
	client := &ipc.Client{Socket: e.sock()}
	t.Cleanup(client.CloseIdleConnections)

	healthCheck(t, srv.addr, &ipc.PerRPCCredentials{Client: client, Profile: "prod", AllowInsecure: true})
	srv.mu.Lock()
	seen := append([]string(nil), srv.seen...)
	srv.mu.Unlock()
	for _, got := range seen {
		if strings.Contains(got, tok) {
			t.Errorf("PerRPCCredentials{Profile: %q} sent the profile's token to %s, which is not among its hosts (api.example.com)", "prod", srv.addr)
		}
	}
}
