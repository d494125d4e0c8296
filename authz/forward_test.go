package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// TestForwardTokenOff: with authz.forward_token: false an allowed request
// gets the identity headers but no Authorization from the check (over
// HTTP and gRPC); the request's own Authorization, if any, is neither
// replaced nor removed.
func TestForwardTokenOff(t *testing.T) {
	h, err := NewHTTPHandler(HTTPOptions{Issuer: testIssuer, Verifier: newStubVerifier(), Policy: mustPolicy(t, testPolicyConfig()), OmitToken: true})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/d", nil)
	r.Host = grafanaHost
	r.Header.Set("Cookie", "_ghbroker="+sessSRE)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK || rec.Header().Get(HeaderUser) == "" || rec.Header().Get("Authorization") != "" {
		t.Errorf("HTTP: %d, user %q, Authorization %q", rec.Code, rec.Header().Get(HeaderUser), rec.Header().Get("Authorization"))
	}

	conn := startGRPC(t, GRPCOptions{OmitToken: true})
	resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(),
		envoyCheck("GET", "https", grafanaHost, "/d", map[string]string{"cookie": "_ghbroker=" + sessSRE}, nil))
	if err != nil {
		t.Fatal(err)
	}
	ok := resp.GetOkResponse()
	if ok == nil {
		t.Fatalf("gRPC: not allowed: %v", resp)
	}
	got := headerMap(t, ok.Headers)
	if got["authorization"] != "" || slices.Contains(ok.HeadersToRemove, "authorization") || got[headerKey(HeaderUser)] == "" {
		t.Errorf("gRPC: headers %v, removed %v", got, ok.HeadersToRemove)
	}
}
