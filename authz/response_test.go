package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// corsPolicy has one host whose rule lets CORS preflights through and one
// whose rule does not.
func corsPolicy(t testing.TB) *Policy {
	return mustPolicy(t, PolicyConfig{Default: "deny", Rules: []RuleConfig{
		{Hosts: []string{"api.example.com"}, AllowPreflight: true, Allow: AllowConfig{Groups: []string{"acme/sre"}}},
		{Hosts: []string{"grafana.example.com"}, Allow: AllowConfig{Groups: []string{"acme/sre"}}},
	}})
}

// bothDoors answers one original request through the HTTP door (in the
// Ambassador dialect, or Traefik's when traefik is set) and through the
// gRPC door, and returns both statuses.
func bothDoors(t *testing.T, p *Policy, method, host, path string, hdr map[string]string, traefik bool) (httpStatus, grpcStatus int) {
	t.Helper()
	hd, err := NewHTTPHandler(HTTPOptions{Issuer: testIssuer, Verifier: newStubVerifier(), Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(method, path, nil)
	r.Host = host
	if traefik {
		r.Method, r.Host = http.MethodGet, "ghbroker:8080"
		r.Header.Set("X-Forwarded-Method", method)
		r.Header.Set("X-Forwarded-Host", host)
		r.Header.Set("X-Forwarded-Uri", path)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	hd.ServeHTTP(w, r)

	c, err := newChecker(testIssuer, newStubVerifier(), p, "", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &grpcAuthz{c: c, memo: newHeaderMemo()}
	lower := map[string]string{}
	for k, v := range hdr {
		lower[headerKey(k)] = v
	}
	res, err := g.Check(context.Background(), envoyCheck(method, "https", host, path, lower, nil))
	if err != nil {
		t.Fatal(err)
	}
	gs := int(res.GetDeniedResponse().GetStatus().GetCode())
	if _, ok := res.GetHttpResponse().(*authv3.CheckResponse_OkResponse); ok {
		gs = http.StatusOK
	}
	return w.Code, gs
}

func TestPreflight(t *testing.T) {
	p := corsPolicy(t)
	cors := map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization"}
	with := func(extra ...string) map[string]string {
		m := map[string]string{}
		for k, v := range cors {
			m[k] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	tests := []struct {
		name   string
		method string
		host   string
		hdr    map[string]string
		want   int
	}{
		{"preflight, allow_preflight: passes", http.MethodOptions, "api.example.com", cors, 200},
		{"preflight, allow_preflight off: needs a sign-in", http.MethodOptions, "grafana.example.com", cors, 401},
		{"OPTIONS without Origin is no preflight", http.MethodOptions, "api.example.com",
			map[string]string{"Access-Control-Request-Method": "PUT"}, 401},
		{"preflight with a forbidden user's cookie: decided normally", http.MethodOptions, "api.example.com",
			with("Cookie", "_ghbroker="+sessBob), 403},
		{"preflight with an admitted user's cookie: decided normally", http.MethodOptions, "api.example.com",
			with("Cookie", "_ghbroker="+sessSRE), 200},
		{"preflight with a bad Bearer: decided normally", http.MethodOptions, "api.example.com",
			with("Authorization", "Bearer nope"), 401},
		{"the actual request still needs a sign-in", http.MethodPut, "api.example.com", cors, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, traefik := range []bool{false, true} {
				hs, gs := bothDoors(t, p, tt.method, tt.host, "/v1/things", tt.hdr, traefik)
				if hs != tt.want || gs != tt.want {
					t.Errorf("traefik %v: HTTP door %d, gRPC door %d; want %d", traefik, hs, gs, tt.want)
				}
			}
		})
	}
}

// TestWebSocketNeedsSignInWith401: a browser never follows a redirect that
// answers a WebSocket handshake, so the doors that would send a navigation
// to the login answer 401 instead.
func TestWebSocketNeedsSignInWith401(t *testing.T) {
	p := corsPolicy(t)
	ws := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Origin": "https://grafana.example.com"}
	for _, traefik := range []bool{false, true} {
		hs, gs := bothDoors(t, p, http.MethodGet, "grafana.example.com", "/api/live/ws", ws, traefik)
		if hs != 401 || gs != 401 {
			t.Errorf("traefik %v: handshake without a session: HTTP door %d, gRPC door %d; want 401", traefik, hs, gs)
		}
		// The same navigation without the upgrade is redirected.
		hs, gs = bothDoors(t, p, http.MethodGet, "grafana.example.com", "/api/live/ws", nil, traefik)
		if hs != 302 || gs != 302 {
			t.Errorf("traefik %v: navigation: HTTP door %d, gRPC door %d; want 302", traefik, hs, gs)
		}
		ws["Cookie"] = "_ghbroker=" + sessSRE
		hs, gs = bothDoors(t, p, http.MethodGet, "grafana.example.com", "/api/live/ws", ws, traefik)
		if hs != 200 || gs != 200 {
			t.Errorf("traefik %v: handshake with a session: HTTP door %d, gRPC door %d; want 200", traefik, hs, gs)
		}
		delete(ws, "Cookie")
	}
}
