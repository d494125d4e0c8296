package authz

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ghbroker/ghbroker/authz/verify"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/internal/sessioncookie"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/store/memory"
)

const testIssuer = "https://auth.example.com"

// stubVerifier is a test-only TokenVerifier: a map from token to what it
// verifies as. A token verified as another kind fails with verify.ErrType,
// as the real verifier's "typ" check does. It records every call.
type stubVerifier struct {
	tokens map[string]stubToken
	mu     sync.Mutex
	calls  []stubCall
}

type stubToken struct {
	kind   claims.Kind
	claims *claims.Claims
	err    error // returned when verified as its own kind
}

type stubCall struct {
	token string
	kind  claims.Kind
}

func (s *stubVerifier) Verify(token string, kind claims.Kind) (*claims.Claims, error) {
	s.mu.Lock()
	s.calls = append(s.calls, stubCall{token, kind})
	s.mu.Unlock()
	t, ok := s.tokens[token]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: not a test token", verify.ErrMalformed)
	case t.kind != kind:
		return nil, fmt.Errorf("%w: want %s", verify.ErrType, kind)
	case t.err != nil:
		return nil, t.err
	}
	return t.claims, nil
}

// Precheck answers as Verify would, without recording a call.
func (s *stubVerifier) Precheck(token string, kind claims.Kind) (bool, error) {
	t, ok := s.tokens[token]
	switch {
	case !ok:
		return false, fmt.Errorf("%w: not a test token", verify.ErrMalformed)
	case t.kind != kind:
		return false, fmt.Errorf("%w: want %s", verify.ErrType, kind)
	}
	return false, t.err
}

func (s *stubVerifier) callsFor(token string) []claims.Kind {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []claims.Kind
	for _, c := range s.calls {
		if c.token == token {
			out = append(out, c.kind)
		}
	}
	return out
}

// fakeJWS looks like a compact JWS with the given "typ", enough for the
// front door's ID-token retry; only stubVerifier knows what it means.
func fakeJWS(typ claims.Kind, name string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256","typ":"`+string(typ)+`"}`)) + "." + enc([]byte(name)) + ".c2ln"
}

var (
	sessSRE     = fakeJWS(claims.KindSession, "sre")
	sessBob     = fakeJWS(claims.KindSession, "bob")
	sessExpired = fakeJWS(claims.KindSession, "expired")
	sessLong    = fakeJWS(claims.KindSession, strings.Repeat("x", 6000))
	atSRE       = fakeJWS(claims.KindAccess, "sre")
	atNoGateway = fakeJWS(claims.KindAccess, "sre-no-gateway")
	atExpired   = fakeJWS(claims.KindAccess, "expired")
	idOK        = fakeJWS(claims.KindID, "id-ok")
	idOtherAud  = fakeJWS(claims.KindID, "id-other")
)

// withGateway is c as an access token of a client with gateway_access:
// its audience names claims.GatewayAudience.
func withGateway(c *claims.Claims) *claims.Claims {
	g := *c
	g.Audience = jwt.Audience{testIssuer, "cli", claims.GatewayAudience(testIssuer)}
	return &g
}

func newStubVerifier() *stubVerifier {
	return &stubVerifier{tokens: map[string]stubToken{
		sessSRE:     {kind: claims.KindSession, claims: sre},
		sessBob:     {kind: claims.KindSession, claims: bob},
		sessExpired: {kind: claims.KindSession, err: fmt.Errorf("%w: 2m ago", verify.ErrExpired)},
		sessLong:    {kind: claims.KindSession, claims: sre},
		atSRE:       {kind: claims.KindAccess, claims: withGateway(sre)},
		atNoGateway: {kind: claims.KindAccess, claims: sre},
		atExpired:   {kind: claims.KindAccess, err: fmt.Errorf("%w: 2m ago", verify.ErrExpired)},
		idOK:        {kind: claims.KindID, claims: sre},
		idOtherAud:  {kind: claims.KindID, err: fmt.Errorf("%w: not listed", verify.ErrAudience)},
	}}
}

func newTestHTTPHandler(t testing.TB, v TokenVerifier, prefix string) http.Handler {
	t.Helper()
	h, err := NewHTTPHandler(HTTPOptions{Issuer: testIssuer, Verifier: v, Policy: mustPolicy(t, testPolicyConfig()), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func loginURL(original string) string {
	return testIssuer + "/login?rd=" + url.QueryEscape(original)
}

const (
	challenge    = `Bearer realm="https://auth.example.com"`
	htmlAccept   = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	grafanaHost  = "grafana.example.com"
	grafanaURI   = "/d/abc?orgId=1"
	grafanaURL   = "https://grafana.example.com/d/abc?orgId=1"
	forbidBobTxt = "forbidden: signed in as bob; grafana.example.com requires members of acme/sre or acme/dev\n"
)

// h builds a header from name, value pairs; repeated names add values.
func h(kv ...string) http.Header {
	out := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Add(kv[i], kv[i+1])
	}
	return out
}

// sreAllowed are the headers of an allowed request by sre with sessSRE.
func sreAllowed(token string, envoy bool) map[string]string {
	m := map[string]string{
		"Cache-Control":         "no-store",
		"X-Auth-Request-User":   "sre-user",
		"X-Auth-Request-Email":  "sre-user@example.com",
		"X-Auth-Request-Groups": "Acme,Acme/SRE",
		"Authorization":         "Bearer " + token,
	}
	if envoy {
		m["X-Envoy-Auth-Headers-To-Remove"] = "x-auth-request-groups-truncated"
	}
	return m
}

type doorCase struct {
	name   string
	prefix string // the handler's prefix
	method string // default GET
	target string
	host   string
	header http.Header
	want   int
	// exact, when set, is the whole response header.
	exact map[string]string
	// has are header values that must be present.
	has map[string]string
	// absent are headers that must not be present.
	absent []string
	// body is a substring of the body.
	body string
}

func TestHTTPDoor(t *testing.T) {
	chunk0, chunk1 := sessLong[:sessioncookie.MaxChunkValue], sessLong[sessioncookie.MaxChunkValue:]
	identity := []string{"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups", "Authorization", "Location"}
	tests := []doorCase{
		// Ambassador/Emissary proto: http, main listener (path_prefix /authz) and authz.listen.
		{name: "ambassador allow by session cookie", prefix: "/authz", target: "/authz" + grafanaURI, host: grafanaHost,
			header: h("X-Forwarded-Proto", "https", "Accept", htmlAccept, "Cookie", "_ghbroker="+sessSRE),
			want:   200, exact: sreAllowed(sessSRE, true)},
		{name: "ambassador dedicated listener allow", target: grafanaURI, host: grafanaHost,
			header: h("Cookie", "_ghbroker="+sessSRE), want: 200, exact: sreAllowed(sessSRE, true)},
		{name: "ambassador bare prefix is /", prefix: "/authz", target: "/authz", host: grafanaHost,
			header: h("X-Forwarded-Proto", "https"), want: 302, exact: map[string]string{"Cache-Control": "no-store", "Location": loginURL("https://grafana.example.com/")}},
		{name: "ambassador bare prefix with query", prefix: "/authz", target: "/authz?x=1", host: grafanaHost,
			header: h("X-Forwarded-Proto", "https"), want: 302, has: map[string]string{"Location": loginURL("https://grafana.example.com/?x=1")}},
		{name: "ambassador missing Accept is a navigation", prefix: "/authz", target: "/authz" + grafanaURI, host: grafanaHost,
			header: h("X-Forwarded-Proto", "https"), want: 302, exact: map[string]string{"Cache-Control": "no-store", "Location": loginURL(grafanaURL)}},
		{name: "dedicated listener redirect", target: grafanaURI, host: grafanaHost,
			header: h("X-Forwarded-Proto", "https", "Accept", htmlAccept), want: 302, has: map[string]string{"Location": loginURL(grafanaURL)}},
		{name: "redirect keeps the port", target: grafanaURI, host: "Grafana.example.com:8443",
			header: h("X-Forwarded-Proto", "https"), want: 302, has: map[string]string{"Location": loginURL("https://grafana.example.com:8443" + grafanaURI)}},
		{name: "redirect scheme defaults to http", target: "/", host: grafanaHost, want: 302,
			has: map[string]string{"Location": loginURL("http://grafana.example.com/")}},
		{name: "HEAD navigation redirects", method: http.MethodHead, target: "/", host: grafanaHost, want: 302},
		{name: "XHR gets 401", target: grafanaURI, host: grafanaHost, header: h("Accept", "application/json"),
			want: 401, exact: map[string]string{"Cache-Control": "no-store", "Www-Authenticate": challenge, "Content-Type": "text/plain; charset=utf-8"}},
		{name: "POST without credential gets 401", method: http.MethodPost, target: "/", host: grafanaHost,
			want: 401, has: map[string]string{"Www-Authenticate": challenge}, absent: []string{"Location"}},
		{name: "OPTIONS answered", method: http.MethodOptions, target: "/", host: grafanaHost, want: 401},
		{name: "PUT answered", method: http.MethodPut, target: "/x", host: grafanaHost,
			header: h("Cookie", "_ghbroker="+sessSRE), want: 200, has: map[string]string{"X-Auth-Request-User": "sre-user"}},
		{name: "DELETE forbidden", method: http.MethodDelete, target: "/x", host: grafanaHost,
			header: h("Cookie", "_ghbroker="+sessBob), want: 403, body: forbidBobTxt},
		{name: "expired cookie on a navigation: login", target: "/", host: grafanaHost,
			header: h("Cookie", "_ghbroker="+sessExpired), want: 302},
		{name: "expired cookie on XHR", target: "/", host: grafanaHost, header: h("Cookie", "_ghbroker="+sessExpired, "Accept", "*/*"),
			want: 401, has: map[string]string{"Www-Authenticate": challenge + `, error="invalid_token", error_description="the token has expired"`}},

		// Bearer tokens.
		{name: "access token", target: "/", host: grafanaHost, header: h("Authorization", "Bearer "+atSRE),
			want: 200, exact: sreAllowed(atSRE, true)},
		{name: "bearer scheme is case-insensitive", target: "/", host: grafanaHost, header: h("Authorization", "bearer "+atSRE), want: 200},
		{name: "access token of a client without gateway access", target: "/", host: grafanaHost, header: h("Authorization", "Bearer "+atNoGateway, "Accept", htmlAccept),
			want: 401, has: map[string]string{"WWW-Authenticate": challenge + `, error="invalid_token", error_description="the token is not meant for this service"`}},
		{name: "bearer wins over the cookie", target: "/", host: grafanaHost,
			header: h("Authorization", "Bearer "+atSRE, "Cookie", "_ghbroker="+sessBob), want: 200, has: map[string]string{"Authorization": "Bearer " + atSRE}},
		{name: "expired bearer on a navigation: 401 not 302", target: "/", host: grafanaHost, header: h("Authorization", "Bearer "+atExpired),
			want: 401, exact: map[string]string{"Cache-Control": "no-store", "Content-Type": "text/plain; charset=utf-8",
				"Www-Authenticate": challenge + `, error="invalid_token", error_description="the token has expired"`}},
		{name: "invalid bearer does not fall back to the cookie", target: "/", host: grafanaHost,
			header: h("Authorization", "Bearer "+atExpired, "Cookie", "_ghbroker="+sessSRE, "Accept", "application/json"), want: 401},
		{name: "garbage bearer", target: "/", host: grafanaHost, header: h("Authorization", "Bearer abc", "Accept", "application/json"),
			want: 401, has: map[string]string{"Www-Authenticate": challenge + `, error="invalid_token", error_description="the token is malformed"`}},
		{name: "ID token with a listed audience", target: "/", host: grafanaHost, header: h("Authorization", "Bearer "+idOK),
			want: 200, exact: sreAllowed(idOK, true)},
		{name: "ID token with another audience", target: "/", host: grafanaHost, header: h("Authorization", "Bearer "+idOtherAud),
			want: 401, has: map[string]string{"Www-Authenticate": challenge + `, error="invalid_token", error_description="the token is not meant for this service"`}},
		{name: "session token as Bearer", target: "/", host: grafanaHost, header: h("Authorization", "Bearer "+sessSRE),
			want: 401, has: map[string]string{"Www-Authenticate": challenge + `, error="invalid_token", error_description="this kind of token is not accepted here"`}},
		{name: "duplicate Authorization", target: "/", host: grafanaHost,
			header: h("Authorization", "Bearer "+atSRE, "Authorization", "Bearer "+atSRE),
			want:   401, has: map[string]string{"Www-Authenticate": challenge + `, error="invalid_request", error_description="more than one Authorization header"`}},
		{name: "comma-joined Authorization", target: "/", host: grafanaHost, header: h("Authorization", "Bearer "+atSRE+", Bearer "+atSRE),
			want: 401, has: map[string]string{"Www-Authenticate": challenge + `, error="invalid_request", error_description="more than one Authorization header or token"`}},
		{name: "empty Bearer", target: "/", host: grafanaHost, header: h("Authorization", "Bearer "),
			want: 401, has: map[string]string{"Www-Authenticate": challenge + `, error="invalid_request", error_description="the Bearer token is empty"`}},
		{name: "Basic is not ours: the cookie decides", target: "/", host: grafanaHost,
			header: h("Authorization", "Basic dXNlcjpwYXNz", "Cookie", "_ghbroker="+sessSRE), want: 200, has: map[string]string{"Authorization": "Bearer " + sessSRE}},
		{name: "Basic without cookie: no error=", target: "/", host: grafanaHost, header: h("Authorization", "Basic dXNlcjpwYXNz", "Accept", "*/*"),
			want: 401, has: map[string]string{"Www-Authenticate": challenge}},

		// Forbidden.
		{name: "forbidden page for browsers", target: "/", host: grafanaHost, header: h("Cookie", "_ghbroker="+sessBob, "Accept", htmlAccept),
			want: 403, has: map[string]string{"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
			absent: identity, body: "Signed in as <strong>bob</strong>; grafana.example.com requires members of acme/sre or acme/dev."},
		{name: "forbidden text for XHR", target: "/", host: grafanaHost, header: h("Cookie", "_ghbroker="+sessBob, "Accept", "application/json"),
			want: 403, has: map[string]string{"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}, absent: identity, body: forbidBobTxt},
		{name: "default deny for an unknown host", target: "/", host: "unknown.org", header: h("Cookie", "_ghbroker="+sessBob, "Accept", "*/*"),
			want: 403, body: "unknown.org requires " + descDefaultDeny},
		{name: "path not in normal form is refused", target: "/x/../%61dmin", host: "kibana.example.com",
			header: h("Cookie", "_ghbroker="+sessBob, "Accept", "*/*"), want: 403, body: "forbidden: signed in as bob; kibana.example.com requires a request path in normal form"},
		{name: "path not in normal form is refused without a credential", target: "/public/..;/admin", host: "status.example.com",
			header: h("Accept", htmlAccept), want: 403, body: "status.example.com requires a request path in normal form"},
		{name: "undecodable path is refused", target: "/%zz", host: "kibana.example.com",
			header: h("Cookie", "_ghbroker="+sessBob, "Accept", "*/*"), want: 403, body: descBadPath},

		// Public.
		{name: "public without credential", target: "/", host: "status.example.com", header: h("X-Auth-Request-User", "ceo"),
			want: 200, exact: map[string]string{"Cache-Control": "no-store",
				"X-Envoy-Auth-Headers-To-Remove": "x-auth-request-user, x-auth-request-email, x-auth-request-groups, x-auth-request-groups-truncated"}},
		{name: "public with credential", target: "/", host: "status.example.com", header: h("Cookie", "_ghbroker="+sessSRE),
			want: 200, exact: sreAllowed(sessSRE, true)},

		// Hostile hosts and requests.
		{name: "unknown host: login without rd", target: "/", host: "evil.com", want: 302,
			exact: map[string]string{"Cache-Control": "no-store", "Location": testIssuer + "/login"}},
		{name: "userinfo in Host", target: "/", host: "evil.com@grafana.example.com", want: 401,
			has: map[string]string{"Www-Authenticate": challenge + `, error="invalid_request", error_description="the original request could not be reconstructed"`}, absent: []string{"Location"}},
		{name: "path in Host", target: "/", host: "grafana.example.com/evil", want: 401, absent: []string{"Location"}},
		{name: "bad port", target: "/", host: "grafana.example.com:443x", want: 401},
		{name: "IPv6 literal", target: "/", host: "[::1]:80", want: 401},
		{name: "no Host", target: "/", host: "", want: 401},
		{name: "long Host", target: "/", host: strings.Repeat("a.", 130) + "example.com", want: 401},
		{name: "long URI", target: "/" + strings.Repeat("a", 9000), host: grafanaHost, want: 401},
		{name: "X-Forwarded-Host ignored by Ambassador", target: "/", host: grafanaHost, header: h("X-Forwarded-Host", "evil.com"),
			want: 302, has: map[string]string{"Location": loginURL("http://grafana.example.com/")}},
		{name: "X-Forwarded-Host cannot pick a public rule", target: "/", host: grafanaHost,
			header: h("X-Forwarded-Host", "status.example.com", "Accept", "*/*"), want: 401},
		{name: "bad X-Forwarded-Proto", target: "/", host: grafanaHost, header: h("X-Forwarded-Proto", "javascript"), want: 401},
		{name: "X-Forwarded-Proto list", target: "/", host: grafanaHost, header: h("X-Forwarded-Proto", "HTTPS, http"),
			want: 302, has: map[string]string{"Location": loginURL("https://grafana.example.com/")}},
		{name: "target outside the prefix", prefix: "/authz", target: "/authzfoo", host: grafanaHost, want: 401},

		// nginx auth_request: 401/403 only, never a redirect.
		{name: "nginx X-Original-URI navigation: 401", prefix: "/authz", target: "/authz", host: grafanaHost,
			header: h("X-Original-URI", grafanaURI, "X-Original-Method", "GET", "Accept", htmlAccept),
			want:   401, exact: map[string]string{"Cache-Control": "no-store", "Www-Authenticate": challenge, "Content-Type": "text/plain; charset=utf-8"}},
		{name: "nginx X-Original-URL allow", prefix: "/authz", target: "/authz", host: "ghbroker.auth.svc",
			header: h("X-Original-URL", "https://grafana.example.com"+grafanaURI, "Cookie", "_ghbroker="+sessSRE),
			want:   200, exact: sreAllowed(sessSRE, false)},
		{name: "nginx X-Original-URI allow", target: "/authz", host: grafanaHost,
			header: h("X-Original-URI", grafanaURI, "Cookie", "_ghbroker="+sessSRE), want: 200, exact: sreAllowed(sessSRE, false)},
		{name: "nginx forbidden", target: "/authz", host: grafanaHost,
			header: h("X-Original-URI", "/", "Cookie", "_ghbroker="+sessBob, "Accept", htmlAccept), want: 403, body: "Signed in as"},
		{name: "nginx path rule", target: "/authz", host: "kibana.example.com",
			header: h("X-Original-URI", "/admin/x?y", "Cookie", "_ghbroker="+sessBob), want: 403},
		{name: "nginx ignores a client X-Forwarded-Host", target: "/authz", host: grafanaHost,
			header: h("X-Original-URI", "/", "X-Forwarded-Host", "status.example.com"), want: 401},
		{name: "nginx userinfo in X-Original-URL", target: "/authz", host: grafanaHost,
			header: h("X-Original-URL", "https://evil.com@grafana.example.com/"), want: 401},
		{name: "nginx X-Original-URL scheme", target: "/authz", host: grafanaHost,
			header: h("X-Original-URL", "javascript://grafana.example.com/"), want: 401},
		{name: "nginx two X-Original-URI", target: "/authz", host: grafanaHost,
			header: h("X-Original-URI", "/", "X-Original-URI", "/admin", "Cookie", "_ghbroker="+sessSRE), want: 401},

		// Traefik forwardAuth: X-Forwarded-*, redirects pass through.
		{name: "traefik navigation: 302", target: "/", host: "ghbroker:8080",
			header: h("X-Forwarded-Method", "GET", "X-Forwarded-Proto", "https", "X-Forwarded-Host", grafanaHost, "X-Forwarded-Uri", grafanaURI, "Accept", htmlAccept),
			want:   302, exact: map[string]string{"Cache-Control": "no-store", "Location": loginURL(grafanaURL)}},
		{name: "traefik allow", target: "/", host: "ghbroker:8080",
			header: h("X-Forwarded-Method", "GET", "X-Forwarded-Proto", "https", "X-Forwarded-Host", grafanaHost, "X-Forwarded-Uri", grafanaURI, "Cookie", "_ghbroker="+sessSRE),
			want:   200, exact: sreAllowed(sessSRE, false)},
		{name: "traefik XHR: 401", target: "/", host: "ghbroker:8080",
			header: h("X-Forwarded-Host", grafanaHost, "X-Forwarded-Uri", "/api", "Accept", "application/json"), want: 401},
		{name: "traefik POST: 401", target: "/", host: "ghbroker:8080",
			header: h("X-Forwarded-Method", "POST", "X-Forwarded-Host", grafanaHost, "X-Forwarded-Uri", "/api"), want: 401},
		{name: "traefik forbidden", target: "/", host: "ghbroker:8080",
			header: h("X-Forwarded-Host", grafanaHost, "X-Forwarded-Uri", "/", "Cookie", "_ghbroker="+sessBob, "Accept", "*/*"), want: 403, body: forbidBobTxt},
		{name: "traefik unknown X-Forwarded-Host: no rd", target: "/", host: "ghbroker:8080",
			header: h("X-Forwarded-Host", "evil.com", "X-Forwarded-Uri", "/"), want: 302, exact: map[string]string{"Cache-Control": "no-store", "Location": testIssuer + "/login"}},
		{name: "traefik hostile X-Forwarded-Host", target: "/", host: "ghbroker:8080",
			header: h("X-Forwarded-Host", "grafana.example.com/@evil.com", "X-Forwarded-Uri", "/"), want: 401, absent: []string{"Location"}},
		{name: "traefik control character in X-Forwarded-Uri", target: "/", host: "ghbroker:8080",
			header: h("X-Forwarded-Host", grafanaHost, "X-Forwarded-Uri", "/a\x01b"), want: 401},
		{name: "traefik relative X-Forwarded-Uri", target: "/", host: "ghbroker:8080",
			header: h("X-Forwarded-Host", grafanaHost, "X-Forwarded-Uri", "evil.com/x"), want: 401},
		{name: "nginx and traefik headers together", target: "/", host: grafanaHost,
			header: h("X-Original-URI", "/", "X-Forwarded-Uri", "/", "Cookie", "_ghbroker="+sessSRE), want: 401},

		// Session cookies: several values, chunks.
		{name: "two session cookies: the first valid wins (second)", target: "/", host: grafanaHost,
			header: h("Cookie", "_ghbroker=garbage; _ghbroker="+sessSRE), want: 200, has: map[string]string{"Authorization": "Bearer " + sessSRE}},
		{name: "two session cookies: the first valid wins (first)", target: "/", host: grafanaHost,
			header: h("Cookie", "_ghbroker="+sessBob+"; _ghbroker="+sessSRE, "Accept", "*/*"), want: 403, body: "signed in as bob"},
		{name: "two Cookie headers", target: "/", host: grafanaHost,
			header: h("Cookie", "_ghbroker="+sessExpired, "Cookie", "_ghbroker="+sessSRE), want: 200, has: map[string]string{"X-Auth-Request-User": "sre-user"}},
		{name: "other cookies ignored", target: "/", host: grafanaHost,
			header: h("Cookie", "_ghbrokerx="+sessBob+"; grafana_session=abc; _ghbroker="+sessSRE), want: 200, has: map[string]string{"X-Auth-Request-User": "sre-user"}},
		{name: "chunked session", target: "/", host: grafanaHost,
			header: h("Cookie", "_ghbroker.0="+chunk0+"; _ghbroker.1="+chunk1), want: 200, has: map[string]string{"Authorization": "Bearer " + sessLong}},
		{name: "chunks in another order, right indices", target: "/", host: grafanaHost,
			header: h("Cookie", "_ghbroker.1="+chunk1, "Cookie", "_ghbroker.0="+chunk0), want: 200},
		{name: "chunk values swapped", target: "/", host: grafanaHost,
			header: h("Cookie", "_ghbroker.0="+chunk1+"; _ghbroker.1="+chunk0, "Accept", "*/*"), want: 401,
			has: map[string]string{"Www-Authenticate": challenge + `, error="invalid_token", error_description="the token is malformed"`}},
		{name: "chunk missing", target: "/", host: grafanaHost,
			header: h("Cookie", "_ghbroker.0="+chunk0+"; _ghbroker.2="+chunk1, "Accept", "*/*"), want: 401},
		{name: "only a later chunk: no credential", target: "/", host: grafanaHost,
			header: h("Cookie", "_ghbroker.1="+chunk1, "Accept", "*/*"), want: 401, has: map[string]string{"Www-Authenticate": challenge}},
	}
	v := newStubVerifier()
	handlers := map[string]http.Handler{"": newTestHTTPHandler(t, v, ""), "/authz": newTestHTTPHandler(t, v, "/authz")}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			r := httptest.NewRequest(method, "http://placeholder/", failingBody{t})
			r.RequestURI = tt.target
			r.Host = tt.host
			for k, vs := range tt.header {
				r.Header[k] = vs
			}
			w := httptest.NewRecorder()
			handlers[tt.prefix].ServeHTTP(w, r)
			res := w.Result()
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d; headers %v; body %q", res.StatusCode, tt.want, res.Header, w.Body.String())
			}
			if got := res.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if tt.exact != nil {
				got := map[string]string{}
				for k, vs := range res.Header {
					got[k] = strings.Join(vs, "\n")
				}
				if diff := cmp.Diff(tt.exact, got); diff != "" {
					t.Errorf("response headers (-want +got):\n%s", diff)
				}
			}
			for k, want := range tt.has {
				if got := res.Header.Values(k); len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			for _, k := range tt.absent {
				if got := res.Header.Values(k); len(got) > 0 {
					t.Errorf("%s = %q, want none", k, got)
				}
			}
			if !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("body %q does not contain %q", w.Body.String(), tt.body)
			}
			if tt.want == 200 && w.Body.Len() != 0 {
				t.Errorf("200 with a body: %q", w.Body.String())
			}
		})
	}
}

// failingBody fails the test if the check reads the request body.
type failingBody struct{ t *testing.T }

func (b failingBody) Read([]byte) (int, error) {
	b.t.Error("the check read the request body")
	return 0, io.EOF
}

func TestHTTPSessionAsBearerNeverVerifiedAsSession(t *testing.T) {
	v := newStubVerifier()
	hd := newTestHTTPHandler(t, v, "")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Host = grafanaHost
	r.Header.Set("Authorization", "Bearer "+sessSRE)
	hd.ServeHTTP(httptest.NewRecorder(), r)
	if got := v.callsFor(sessSRE); !cmp.Equal(got, []claims.Kind{claims.KindAccess}) {
		t.Errorf("a session token as Bearer was verified as %v, want only %v", got, claims.KindAccess)
	}
	// An ID token is retried as one only because its typ says JWT.
	r.Header.Set("Authorization", "Bearer "+idOK)
	hd.ServeHTTP(httptest.NewRecorder(), r)
	if got := v.callsFor(idOK); !cmp.Equal(got, []claims.Kind{claims.KindAccess, claims.KindID}) {
		t.Errorf("an ID token was verified as %v", got)
	}
}

func TestHTTPGroupsHeaderCapped(t *testing.T) {
	many := testUser("many")
	for i := range 2000 {
		many.Groups = append(many.Groups, fmt.Sprintf("acme/team-%04d", i))
	}
	many.Groups = append(many.Groups, "acme/sre")
	tok := fakeJWS(claims.KindSession, "many")
	v := newStubVerifier()
	v.tokens[tok] = stubToken{kind: claims.KindSession, claims: many}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Host = grafanaHost
	r.Header.Set("Cookie", "_ghbroker="+tok)
	w := httptest.NewRecorder()
	newTestHTTPHandler(t, v, "").ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	groups := w.Header().Get(HeaderGroups)
	if line := len(HeaderGroups) + len(": ") + len(groups) + len("\r\n"); line > 8<<10 {
		t.Errorf("groups header line is %d bytes, over 8 KiB", line)
	}
	if len(groups) < 7<<10 {
		t.Errorf("groups header cut too short: %d bytes", len(groups))
	}
	if w.Header().Get(HeaderGroupsTruncated) != "true" {
		t.Errorf("%s not set", HeaderGroupsTruncated)
	}
	parts := strings.Split(groups, ",")
	if parts[0] != "acme/team-0000" || !strings.HasPrefix(parts[len(parts)-1], "acme/team-") || len(parts[len(parts)-1]) != len("acme/team-0000") {
		t.Errorf("groups not cut at a boundary: first %q last %q", parts[0], parts[len(parts)-1])
	}
	if w.Header().Get(envoyHeadersToRemove) != "" {
		t.Errorf("%s = %q with every identity header set", envoyHeadersToRemove, w.Header().Get(envoyHeadersToRemove))
	}
}

// panickyVerifier panics, as a bug in a verifier might.
type panickyVerifier struct{}

func (panickyVerifier) Verify(string, claims.Kind) (*claims.Claims, error) { panic("boom") }
func (panickyVerifier) Precheck(string, claims.Kind) (bool, error)         { panic("boom") }

func TestHTTPPanicIs401(t *testing.T) {
	var logs strings.Builder
	hd, err := NewHTTPHandler(HTTPOptions{Issuer: testIssuer, Verifier: panickyVerifier{}, Policy: mustPolicy(t, testPolicyConfig()),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Host = grafanaHost
	r.Header.Set("Cookie", "_ghbroker=x")
	w := httptest.NewRecorder()
	hd.ServeHTTP(w, r)
	if w.Code != 401 || w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("WWW-Authenticate") != challenge {
		t.Errorf("status %d, headers %v; want 401 with a challenge", w.Code, w.Header())
	}
	if !strings.Contains(logs.String(), "panicked") || !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic not logged: %s", logs.String())
	}
}

func TestNewHTTPHandlerOptions(t *testing.T) {
	p := mustPolicy(t, testPolicyConfig())
	v := newStubVerifier()
	for name, opts := range map[string]HTTPOptions{
		"no issuer":             {Verifier: v, Policy: p},
		"no verifier":           {Issuer: testIssuer, Policy: p},
		"no policy":             {Issuer: testIssuer, Verifier: v},
		"relative prefix":       {Issuer: testIssuer, Verifier: v, Policy: p, Prefix: "authz"},
		"trailing slash prefix": {Issuer: testIssuer, Verifier: v, Policy: p, Prefix: "/authz/"},
	} {
		if _, err := NewHTTPHandler(opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A custom cookie name.
	hd, err := NewHTTPHandler(HTTPOptions{Issuer: testIssuer + "/", Verifier: v, Policy: p, CookieName: "sso"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Host = grafanaHost
	r.Header.Set("Cookie", "_ghbroker="+sessSRE+"; sso="+sessBob)
	w := httptest.NewRecorder()
	hd.ServeHTTP(w, r)
	if w.Code != 403 || !strings.Contains(w.Body.String(), "bob") {
		t.Errorf("custom cookie: status %d body %q", w.Code, w.Body.String())
	}
}

func TestHTTPMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	hd, err := NewHTTPHandler(HTTPOptions{Issuer: testIssuer, Verifier: newStubVerifier(), Policy: mustPolicy(t, testPolicyConfig()), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	do := func(host string, hdr http.Header) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = host
		for k, v := range hdr {
			r.Header[k] = v
		}
		hd.ServeHTTP(httptest.NewRecorder(), r)
	}
	do(grafanaHost, h("Cookie", "_ghbroker="+sessSRE))
	do(grafanaHost, nil)
	do(grafanaHost, h("Accept", "*/*"))
	do(grafanaHost, h("Cookie", "_ghbroker="+sessBob))
	do("status.example.com", nil)
	do(grafanaHost, h("X-Original-URI", "/"))
	do("x", h("X-Forwarded-Uri", "/", "X-Forwarded-Host", grafanaHost, "Cookie", "_ghbroker="+sessSRE))

	want := map[string]float64{
		"http/allow": 1, "http/redirect": 1, "http/unauthenticated": 1, "http/forbidden": 1, "http/public": 1,
		"nginx/unauthenticated": 1, "traefik/allow": 1,
	}
	decisions, histograms := gatherCheckMetrics(t, reg)
	got := map[string]float64{}
	for k, v := range decisions {
		if v != 0 {
			got[k] = v
		}
	}
	var observed uint64
	for _, h := range histograms {
		observed += h.GetSampleCount()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}
	if observed != 7 {
		t.Errorf("durations observed %d times, want 7", observed)
	}
	if allocs := testing.AllocsPerRun(100, func() { m.observe(doorHTTP, resultAllow, time.Millisecond) }); allocs != 0 {
		t.Errorf("recording a check allocates %v times", allocs)
	}
}

func TestHTTPMetricsObservers(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	loaded := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return loaded.Add(90 * time.Second) }
	if err := m.ObserveVerifier(func() (uint64, uint64, int) { return 7, 3, 5 }); err != nil {
		t.Fatal(err)
	}
	if err := m.ObserveKeySetAge(func() time.Time { return loaded }); err != nil {
		t.Fatal(err)
	}
	if err := m.ObserveKeySetAge(func() time.Time { return loaded }); err == nil {
		t.Error("registering the key-set age twice: no error")
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice: no error")
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			switch {
			case mt.GetCounter() != nil:
				got[mf.GetName()] += mt.GetCounter().GetValue()
			case mt.GetGauge() != nil:
				got[mf.GetName()] = mt.GetGauge().GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"ghbroker_authz_cache_hits_total":   7,
		"ghbroker_authz_cache_misses_total": 3,
		"ghbroker_authz_cache_entries":      5,
		"ghbroker_authz_keyset_age_seconds": 90,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	var nilMetrics *Metrics
	nilMetrics.observe(doorGRPC, resultAllow, time.Second) // must not panic
	if err := nilMetrics.ObserveVerifier(nil); err != nil {
		t.Error(err)
	}
}

func TestLoginRedirect(t *testing.T) {
	p := mustPolicy(t, testPolicyConfig())
	tests := []struct {
		name string
		r    Request
		want string
	}{
		{"known host", Request{Scheme: "https", Host: grafanaHost, HostPort: grafanaHost, Path: "/d/x", RawQuery: "a=1&b=2"},
			loginURL("https://grafana.example.com/d/x?a=1&b=2")},
		{"wildcard host with port", Request{Scheme: "http", Host: "a.tools.example.com", HostPort: "a.tools.example.com:8080", Path: "/"},
			loginURL("http://a.tools.example.com:8080/")},
		{"unknown host", Request{Scheme: "https", Host: "evil.com", HostPort: "evil.com", Path: "/"}, testIssuer + "/login"},
		{"HostPort of another host", Request{Scheme: "https", Host: grafanaHost, HostPort: "evil.com:443", Path: "/"},
			loginURL("https://grafana.example.com/")},
		{"HostPort with a bad port", Request{Scheme: "https", Host: grafanaHost, HostPort: grafanaHost + ":@evil.com", Path: "/"},
			loginURL("https://grafana.example.com/")},
		{"other scheme", Request{Scheme: "javascript", Host: grafanaHost, Path: "/"}, testIssuer + "/login"},
		{"hostile host chars", Request{Scheme: "https", Host: "evil.com/.example.com", Path: "/"}, testIssuer + "/login"},
		{"relative path", Request{Scheme: "https", Host: grafanaHost, Path: "@evil.com"}, testIssuer + "/login"},
		{"nil policy", Request{Scheme: "https", Host: grafanaHost, Path: "/"}, testIssuer + "/login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := p
			if tt.name == "nil policy" {
				pol = nil
			}
			if got := LoginRedirect(testIssuer, tt.r, pol); got != tt.want {
				t.Errorf("LoginRedirect = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHTTPRealTokens runs the door against tokens signed by package keys
// and checked by the real Verifier.
func TestHTTPRealTokens(t *testing.T) {
	ctx := context.Background()
	mgr, err := keys.NewManager(ctx, memory.New(memory.Options{}), keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := verify.New(verify.Options{Issuer: testIssuer, Keys: mgr, IDTokenAudiences: []string{"grafana"}})
	if err != nil {
		t.Fatal(err)
	}
	hd := newTestHTTPHandler(t, ver, "/authz")
	now := time.Now()
	sign := func(kind claims.Kind, aud []string, exp time.Time, c *claims.Claims) string {
		t.Helper()
		tc := *c
		tc.Claims = jwt.Claims{Issuer: testIssuer, Subject: "42", Audience: aud, IssuedAt: jwt.NewNumericDate(now.Add(-time.Minute)),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), Expiry: jwt.NewNumericDate(exp)}
		tok, err := mgr.Sign(kind, &tc)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	hour := now.Add(time.Hour)
	session := sign(claims.KindSession, []string{testIssuer}, hour, sre)
	access := sign(claims.KindAccess, []string{testIssuer, "cli", claims.GatewayAudience(testIssuer)}, hour, sre)
	accessGrafana := sign(claims.KindAccess, []string{testIssuer, "grafana"}, hour, sre)
	idGrafana := sign(claims.KindID, []string{"grafana"}, hour, sre)
	idOther := sign(claims.KindID, []string{"kibana"}, hour, sre)
	expired := sign(claims.KindAccess, []string{testIssuer, claims.GatewayAudience(testIssuer)}, now.Add(-time.Hour), sre)
	bobSession := sign(claims.KindSession, []string{testIssuer}, hour, bob)
	chunks := sessioncookie.Split(nil, DefaultCookieName, sign(claims.KindSession, []string{testIssuer}, hour, manyGroups(300)), sessioncookie.Attrs{})

	tests := []struct {
		name   string
		header http.Header
		want   int
		user   string
		wwwErr string
	}{
		{"session cookie", h("Cookie", "_ghbroker="+session), 200, "sre-user", ""},
		{"chunked session cookie", h("Cookie", cookieHeader(chunks)), 200, "many", ""},
		{"access token", h("Authorization", "Bearer "+access), 200, "sre-user", ""},
		// Issue #13 finding 4: Grafana's access token is Grafana's, not a
		// key to every service behind the gateway.
		{"access token of a client without gateway access", h("Authorization", "Bearer "+accessGrafana), 401, "", `error_description="the token is not meant for this service"`},
		{"ID token for a listed client", h("Authorization", "Bearer "+idGrafana), 200, "sre-user", ""},
		{"ID token for another client", h("Authorization", "Bearer "+idOther), 401, "", "invalid_token"},
		{"session token as Bearer", h("Authorization", "Bearer "+session), 401, "", "invalid_token"},
		{"access token as cookie", h("Cookie", "_ghbroker="+access, "Accept", "*/*"), 401, "", "invalid_token"},
		{"expired access token", h("Authorization", "Bearer "+expired), 401, "", `error_description="the token has expired"`},
		{"tampered token", h("Authorization", "Bearer "+access[:len(access)-4]+"AAAA"), 401, "", "invalid_token"},
		{"forbidden", h("Cookie", "_ghbroker="+bobSession, "Accept", "*/*"), 403, "", ""},
		{"no credential, navigation", nil, 302, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/authz/d/x", nil)
			r.Host = grafanaHost
			for k, v := range tt.header {
				r.Header[k] = v
			}
			w := httptest.NewRecorder()
			hd.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d; %v %q", w.Code, tt.want, w.Header(), w.Body.String())
			}
			if got := w.Header().Get(HeaderUser); got != tt.user {
				t.Errorf("user %q, want %q", got, tt.user)
			}
			if tt.want == 200 && !strings.HasPrefix(w.Header().Get("Authorization"), "Bearer ey") {
				t.Errorf("Authorization = %q", w.Header().Get("Authorization"))
			}
			if !strings.Contains(w.Header().Get("WWW-Authenticate"), tt.wwwErr) {
				t.Errorf("WWW-Authenticate %q does not contain %q", w.Header().Get("WWW-Authenticate"), tt.wwwErr)
			}
		})
	}
}

func manyGroups(n int) *claims.Claims {
	c := testUser("many", "acme", "acme/sre")
	for i := range n {
		c.Groups = append(c.Groups, fmt.Sprintf("acme/a-rather-long-team-name-%03d", i))
	}
	return c
}

func cookieHeader(cs []*http.Cookie) string {
	var parts []string
	for _, c := range cs {
		if c.MaxAge >= 0 {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	return strings.Join(parts, "; ")
}
