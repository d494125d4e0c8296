package authz

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ghbroker/ghbroker/claims"
)

// startGRPC serves the gRPC door on a loopback port and returns a client
// connection to it.
func startGRPC(t *testing.T, opts GRPCOptions) *grpc.ClientConn {
	t.Helper()
	if opts.Issuer == "" {
		opts.Issuer = testIssuer
	}
	if opts.Verifier == nil {
		opts.Verifier = newStubVerifier()
	}
	if opts.Policy == nil {
		opts.Policy = mustPolicy(t, testPolicyConfig())
	}
	s, err := NewGRPCServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// envoyCheck builds a CheckRequest shaped like Envoy's: pseudo-headers in
// the headers map, path with its query, lower-case header names.
func envoyCheck(method, scheme, host, path string, headers map[string]string, ext map[string]string) *authv3.CheckRequest {
	hs := map[string]string{":authority": host, ":path": path, ":method": method, ":scheme": scheme, "x-request-id": "r1"}
	for k, v := range headers {
		hs[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "203.0.113.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 55123}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "r1", Method: method, Headers: hs, Path: path, Host: host, Scheme: scheme, Protocol: "HTTP/2",
		}},
		ContextExtensions: ext,
	}}
}

// headerMap flattens HeaderValueOptions, checking each overwrites.
func headerMap(t *testing.T, opts []*corev3.HeaderValueOption) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range opts {
		if o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s: append action %v", o.GetHeader().GetKey(), o.GetAppendAction())
		}
		out[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	return out
}

func TestGRPCCheck(t *testing.T) {
	conn := startGRPC(t, GRPCOptions{})
	client := authv3.NewAuthorizationClient(conn)
	allSRE := map[string]string{
		"x-auth-request-user":   "sre-user",
		"x-auth-request-email":  "sre-user@example.com",
		"x-auth-request-groups": "Acme,Acme/SRE",
		"authorization":         "Bearer " + sessSRE,
	}
	tests := []struct {
		name     string
		req      *authv3.CheckRequest
		code     codes.Code
		status   typev3.StatusCode // for denials
		okHdrs   map[string]string
		removed  []string
		denyHdrs map[string]string // subset
		body     string
	}{
		{name: "allow by session cookie",
			req:  envoyCheck("GET", "https", grafanaHost, grafanaURI, map[string]string{"cookie": "a=b; _ghbroker=" + sessSRE, "accept": htmlAccept}, nil),
			code: codes.OK, okHdrs: allSRE, removed: []string{"x-auth-request-groups-truncated"}},
		{name: "allow by access token",
			req:  envoyCheck("POST", "https", grafanaHost, "/api/x", map[string]string{"authorization": "Bearer " + atSRE}, nil),
			code: codes.OK, okHdrs: map[string]string{"x-auth-request-user": "sre-user", "x-auth-request-email": "sre-user@example.com",
				"x-auth-request-groups": "Acme,Acme/SRE", "authorization": "Bearer " + atSRE}, removed: []string{"x-auth-request-groups-truncated"}},
		{name: "navigation without credential: 302",
			req:  envoyCheck("GET", "https", grafanaHost, grafanaURI, map[string]string{"accept": htmlAccept}, nil),
			code: codes.Unauthenticated, status: typev3.StatusCode_Found,
			denyHdrs: map[string]string{"location": loginURL(grafanaURL), "cache-control": "no-store"}},
		{name: "X-Forwarded-Proto gives the scheme",
			req:  envoyCheck("GET", "http", grafanaHost, "/", map[string]string{"x-forwarded-proto": "https"}, nil),
			code: codes.Unauthenticated, status: typev3.StatusCode_Found,
			denyHdrs: map[string]string{"location": loginURL("https://grafana.example.com/")}},
		{name: "XHR without credential: 401",
			req:  envoyCheck("GET", "https", grafanaHost, "/api", map[string]string{"accept": "application/json"}, nil),
			code: codes.Unauthenticated, status: typev3.StatusCode_Unauthorized,
			denyHdrs: map[string]string{"www-authenticate": challenge, "cache-control": "no-store"}},
		{name: "refused token: 401 invalid_token",
			req:  envoyCheck("GET", "https", grafanaHost, "/", map[string]string{"authorization": "Bearer " + atExpired, "accept": htmlAccept}, nil),
			code: codes.Unauthenticated, status: typev3.StatusCode_Unauthorized,
			denyHdrs: map[string]string{"www-authenticate": challenge + `, error="invalid_token", error_description="the token has expired"`}},
		{name: "duplicate Authorization joined by Envoy: invalid_request",
			req:  envoyCheck("GET", "https", grafanaHost, "/", map[string]string{"authorization": "Bearer " + atSRE + ",Bearer " + atSRE}, nil),
			code: codes.Unauthenticated, status: typev3.StatusCode_Unauthorized,
			denyHdrs: map[string]string{"www-authenticate": challenge + `, error="invalid_request", error_description="more than one Authorization header or token"`}},
		{name: "forbidden: 403 page",
			req:  envoyCheck("GET", "https", grafanaHost, "/", map[string]string{"cookie": "_ghbroker=" + sessBob, "accept": htmlAccept}, nil),
			code: codes.PermissionDenied, status: typev3.StatusCode_Forbidden,
			denyHdrs: map[string]string{"content-type": "text/html; charset=utf-8", "cache-control": "no-store"},
			body:     "Signed in as <strong>bob</strong>; grafana.example.com requires members of acme/sre or acme/dev."},
		{name: "forbidden: 403 text",
			req:  envoyCheck("GET", "https", grafanaHost, "/", map[string]string{"cookie": "_ghbroker=" + sessBob, "accept": "*/*"}, nil),
			code: codes.PermissionDenied, status: typev3.StatusCode_Forbidden,
			denyHdrs: map[string]string{"content-type": "text/plain; charset=utf-8"}, body: forbidBobTxt},
		{name: "public without credential",
			req:  envoyCheck("GET", "https", "status.example.com", "/", map[string]string{"x-auth-request-user": "ceo"}, nil),
			code: codes.OK, okHdrs: map[string]string{},
			removed: []string{"x-auth-request-user", "x-auth-request-email", "x-auth-request-groups", "x-auth-request-groups-truncated"}},
		{name: "extension narrows: refused",
			req: envoyCheck("GET", "https", grafanaHost, "/", map[string]string{"cookie": "_ghbroker=" + sessSRE, "accept": "*/*"},
				map[string]string{"allow_groups": "acme/dev, acme/ops"}),
			code: codes.PermissionDenied, status: typev3.StatusCode_Forbidden,
			body: "requires members of acme/sre or acme/dev, and for this route members of acme/dev or acme/ops"},
		{name: "extension narrows: admitted",
			req: envoyCheck("GET", "https", grafanaHost, "/", map[string]string{"cookie": "_ghbroker=" + sessSRE},
				map[string]string{"allow_groups": "acme/ops,acme/sre"}),
			code: codes.OK, okHdrs: allSRE, removed: []string{"x-auth-request-groups-truncated"}},
		{name: "access token of a client without gateway access",
			req:  envoyCheck("GET", "https", grafanaHost, "/api/x", map[string]string{"authorization": "Bearer " + atNoGateway}, nil),
			code: codes.Unauthenticated, status: typev3.StatusCode_Unauthorized,
			denyHdrs: map[string]string{"www-authenticate": challenge + `, error="invalid_token", error_description="the token is not meant for this service"`}},
		{name: "extension users",
			req: envoyCheck("GET", "https", "x.tools.example.com", "/", map[string]string{"cookie": "_ghbroker=" + sessBob, "accept": "*/*"},
				map[string]string{"allow_users": "alice,BOB"}),
			code: codes.OK, okHdrs: map[string]string{"x-auth-request-user": "bob", "x-auth-request-email": "bob@example.com",
				"x-auth-request-groups": "acme", "authorization": "Bearer " + sessBob}, removed: []string{"x-auth-request-groups-truncated"}},
		{name: "extension narrows a public rule",
			req:  envoyCheck("GET", "https", "status.example.com", "/", map[string]string{"accept": "*/*"}, map[string]string{"allow_users": "alice"}),
			code: codes.Unauthenticated, status: typev3.StatusCode_Unauthorized},
		{name: "empty extensions change nothing",
			req:  envoyCheck("GET", "https", "status.example.com", "/", nil, map[string]string{"allow_users": " , ", "other": "x"}),
			code: codes.OK, okHdrs: map[string]string{},
			removed: []string{"x-auth-request-user", "x-auth-request-email", "x-auth-request-groups", "x-auth-request-groups-truncated"}},
		{name: "hostile authority: no rd",
			req:  envoyCheck("GET", "https", "evil.com", "/", nil, nil),
			code: codes.Unauthenticated, status: typev3.StatusCode_Found, denyHdrs: map[string]string{"location": testIssuer + "/login"}},
		{name: "malformed authority: 401",
			req:  envoyCheck("GET", "https", "evil.com/@grafana.example.com", "/", nil, nil),
			code: codes.Unauthenticated, status: typev3.StatusCode_Unauthorized},
		{name: "empty request: 401",
			req:  &authv3.CheckRequest{},
			code: codes.Unauthenticated, status: typev3.StatusCode_Unauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := client.Check(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := codes.Code(res.GetStatus().GetCode()); got != tt.code {
				t.Fatalf("status %v, want %v (%v)", got, tt.code, res)
			}
			if tt.code == codes.OK {
				ok := res.GetOkResponse()
				if ok == nil {
					t.Fatalf("no OkResponse: %v", res)
				}
				if diff := cmp.Diff(tt.okHdrs, headerMap(t, ok.GetHeaders())); diff != "" {
					t.Errorf("headers (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.removed, ok.GetHeadersToRemove()); diff != "" {
					t.Errorf("headers to remove (-want +got):\n%s", diff)
				}
				if len(ok.GetResponseHeadersToAdd()) != 0 {
					t.Errorf("response headers without a refresh hook: %v", ok.GetResponseHeadersToAdd())
				}
				return
			}
			d := res.GetDeniedResponse()
			if d == nil {
				t.Fatalf("no DeniedResponse: %v", res)
			}
			if d.GetStatus().GetCode() != tt.status {
				t.Errorf("HTTP status %v, want %v", d.GetStatus().GetCode(), tt.status)
			}
			got := headerMap(t, d.GetHeaders())
			if got["cache-control"] != "no-store" {
				t.Errorf("cache-control = %q", got["cache-control"])
			}
			for k, want := range tt.denyHdrs {
				if got[k] != want {
					t.Errorf("%s = %q, want %q", k, got[k], want)
				}
			}
			if !strings.Contains(d.GetBody(), tt.body) {
				t.Errorf("body %q does not contain %q", d.GetBody(), tt.body)
			}
		})
	}
}

func TestGRPCHeaderMapAndRefreshHook(t *testing.T) {
	var hooked []string
	conn := startGRPC(t, GRPCOptions{SessionRefresh: func(c *claims.Claims, tok string) []string {
		hooked = append(hooked, c.PreferredUsername)
		return []string{"_ghbroker=new; Path=/; HttpOnly"}
	}})
	client := authv3.NewAuthorizationClient(conn)
	// encode_raw_headers: header_map instead of headers, values as bytes.
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		Method: "GET", Path: "/", Host: grafanaHost, Scheme: "https",
		HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":authority", RawValue: []byte(grafanaHost)},
			{Key: "cookie", RawValue: []byte("_ghbroker=" + sessSRE)},
		}},
	}}}}
	res, err := client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	ok := res.GetOkResponse()
	if codes.Code(res.GetStatus().GetCode()) != codes.OK || ok == nil {
		t.Fatalf("response %v, want OK", res)
	}
	if len(ok.GetResponseHeadersToAdd()) != 1 || ok.GetResponseHeadersToAdd()[0].GetHeader().GetKey() != "set-cookie" {
		t.Errorf("response headers to add = %v", ok.GetResponseHeadersToAdd())
	}
	// Not for a Bearer token.
	res, err = client.Check(context.Background(), envoyCheck("GET", "https", grafanaHost, "/", map[string]string{"authorization": "Bearer " + atSRE}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.GetOkResponse().GetResponseHeadersToAdd()); n != 0 || !cmp.Equal(hooked, []string{"sre-user"}) {
		t.Errorf("hook called for %v, %d headers added for a Bearer token", hooked, n)
	}
}

func TestGRPCPanicIs401(t *testing.T) {
	conn := startGRPC(t, GRPCOptions{Verifier: panickyVerifier{}})
	res, err := authv3.NewAuthorizationClient(conn).Check(context.Background(),
		envoyCheck("GET", "https", grafanaHost, "/", map[string]string{"cookie": "_ghbroker=x"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(res.GetStatus().GetCode()) != codes.Unauthenticated || res.GetDeniedResponse().GetStatus().GetCode() != typev3.StatusCode_Unauthorized {
		t.Errorf("response %v, want a 401 denial", res)
	}
}

func TestGRPCHealth(t *testing.T) {
	conn := startGRPC(t, GRPCOptions{})
	hc := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", "envoy.service.auth.v3.Authorization"} {
		res, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health(%q) = %v, want SERVING", svc, res.GetStatus())
		}
	}
}

func TestNewGRPCServerOptions(t *testing.T) {
	if _, err := NewGRPCServer(GRPCOptions{Issuer: testIssuer, Verifier: newStubVerifier()}); err == nil {
		t.Error("no policy: no error")
	}
}

// TestGRPCAttributesAgree: the host and path attributes and their
// pseudo-headers are one request when they agree; when they disagree the
// check is refused (401), never followed.
func TestGRPCAttributesAgree(t *testing.T) {
	conn := startGRPC(t, GRPCOptions{})
	client := authv3.NewAuthorizationClient(conn)
	for _, tt := range []struct {
		name    string
		headers map[string]string
		want    typev3.StatusCode
	}{
		{"agree", nil, typev3.StatusCode_Found},
		{":authority with a port and another case", map[string]string{":authority": "Grafana.example.com:443"}, typev3.StatusCode_Found},
		{"X-Forwarded-Host is ignored", map[string]string{"x-forwarded-host": "status.example.com"}, typev3.StatusCode_Found},
		{":authority names another host", map[string]string{":authority": "status.example.com"}, typev3.StatusCode_Unauthorized},
		{":path names another path", map[string]string{":path": "/admin"}, typev3.StatusCode_Unauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := client.Check(context.Background(), envoyCheck("GET", "https", grafanaHost, "/", tt.headers, nil))
			if err != nil {
				t.Fatal(err)
			}
			if got := res.GetDeniedResponse().GetStatus().GetCode(); got != tt.want {
				t.Errorf("status %v, want %v", got, tt.want)
			}
		})
	}
}
