//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestAuthzReplica runs `ghbroker authz`, the stateless replica, against
// `ghbroker dev` as the issuer: it fetches the keys, then decides with no
// store, over HTTP (every path a check) and gRPC (Envoy ext_authz).
func TestAuthzReplica(t *testing.T) {
	devPort := freePort(t)
	start(t, "ghbroker dev is running", "dev", "--port", fmt.Sprint(devPort), "--auto-login", "alice")
	issuer := fmt.Sprintf("http://ghbroker.localhost:%d", devPort)
	listen, check, grpcAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(t.TempDir(), "authz.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %q
log: {format: text}
authz:
  listen: %q
  grpc_listen: %q
session:
  cookie_domain: .ghbroker.localhost
  allowed_redirect_domains: [.ghbroker.localhost]
policy:
  rules:
    - hosts: [app.ghbroker.localhost]
      allow: {groups: [acme/sre]}
    - hosts: [admin.ghbroker.localhost]
      allow: {users: [somebody-else]}
`, listen, check, grpcAddr)), 0o600)
	start(t, "authz replica serving", "authz", "--issuer", issuer, "--jwks-url", fmt.Sprintf("http://127.0.0.1:%d/keys", devPort), "--config", cfg)

	// Readiness waits for the keys.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica never ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	c := newClient(t)
	c.signIn(t, issuer, "alice")
	ask := func(host string, withCookie bool) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, "http://"+check+"/some/page?q=1", nil)
		req.Host = host
		req.Header.Set("Accept", "text/html")
		req.Header.Set("X-Forwarded-Proto", "http")
		if withCookie {
			for _, ck := range c.http.Jar.Cookies(mustURL("http://" + host + "/")) {
				req.AddCookie(ck)
			}
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := ask("app.ghbroker.localhost", true); resp.StatusCode != 200 || resp.Header.Get("X-Auth-Request-User") != "alice" {
		t.Errorf("allowed: %d user=%q", resp.StatusCode, resp.Header.Get("X-Auth-Request-User"))
	}
	if resp := ask("admin.ghbroker.localhost", true); resp.StatusCode != 403 {
		t.Errorf("forbidden: %d", resp.StatusCode)
	}
	resp := ask("app.ghbroker.localhost", false)
	if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), issuer+"/login?rd=") {
		t.Errorf("signed out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	// gRPC: health, then a CheckRequest shaped like Envoy's.
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("grpc health: %v %v", hr, err)
	}
	var cookie []string
	for _, ck := range c.http.Jar.Cookies(mustURL("http://app.ghbroker.localhost/")) {
		cookie = append(cookie, ck.Name+"="+ck.Value)
	}
	cr, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Scheme: "https", Host: "app.ghbroker.localhost", Path: "/d/1?x=1",
			Headers: map[string]string{":authority": "app.ghbroker.localhost", ":path": "/d/1?x=1", ":method": "GET",
				"cookie": strings.Join(cookie, "; "), "accept": "text/html"},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if cr.Status.GetCode() != 0 || cr.GetOkResponse() == nil {
		t.Fatalf("grpc check: %v", cr)
	}
	found := false
	for _, h := range cr.GetOkResponse().GetHeaders() {
		found = found || (strings.EqualFold(h.GetHeader().GetKey(), "x-auth-request-user") && h.GetHeader().GetValue() == "alice")
	}
	if !found {
		t.Errorf("grpc OkResponse lacks the user header: %v", cr.GetOkResponse())
	}
}
