package authz

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseHTTPRequest(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string
		method  string
		target  string
		host    string
		header  http.Header
		want    Request
		dialect Dialect
	}{
		{name: "ambassador with path_prefix", prefix: "/authz", method: "GET", target: "/authz/api/x?y=1&z=%20", host: "App.Example.com",
			header: h("X-Forwarded-Proto", "https", "Accept", "text/html"), dialect: DialectAmbassador,
			want: Request{Method: "GET", Scheme: "https", Host: "app.example.com", HostPort: "app.example.com", Path: "/api/x", RawQuery: "y=1&z=%20", Browser: true}},
		{name: "ambassador dedicated listener", method: "POST", target: "/api/x", host: "app.example.com:8443", dialect: DialectAmbassador,
			want: Request{Method: "POST", Scheme: "http", Host: "app.example.com", HostPort: "app.example.com:8443", Path: "/api/x"}},
		{name: "ambassador bare prefix", prefix: "/authz", method: "GET", target: "/authz", host: "a.example.com", dialect: DialectAmbassador,
			want: Request{Method: "GET", Scheme: "http", Host: "a.example.com", HostPort: "a.example.com", Path: "/", Browser: true}},
		{name: "ambassador prefix then query", prefix: "/authz", method: "GET", target: "/authz?q", host: "a.example.com", dialect: DialectAmbassador,
			want: Request{Method: "GET", Scheme: "http", Host: "a.example.com", HostPort: "a.example.com", Path: "/", RawQuery: "q", Browser: true}},
		{name: "ambassador path kept escaped", method: "GET", target: "/a%2Fb/../c", host: "a.example.com", header: h("Accept", "*/*"), dialect: DialectAmbassador,
			want: Request{Method: "GET", Scheme: "http", Host: "a.example.com", HostPort: "a.example.com", Path: "/a%2Fb/../c"}},
		{name: "trailing dot", method: "HEAD", target: "/", host: "a.example.com.", header: h("Accept", "TEXT/HTML"), dialect: DialectAmbassador,
			want: Request{Method: "HEAD", Scheme: "http", Host: "a.example.com", HostPort: "a.example.com", Path: "/", Browser: true}},
		{name: "nginx X-Original-URI", prefix: "/authz", method: "GET", target: "/authz", host: "grafana.example.com",
			header: h("X-Original-URI", "/d/x?a=b", "X-Original-Method", "DELETE", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "Grafana.example.com:8443"), dialect: DialectNginx,
			want: Request{Method: "DELETE", Scheme: "https", Host: "grafana.example.com", HostPort: "grafana.example.com", Path: "/d/x", RawQuery: "a=b"}},
		{name: "nginx X-Original-URL", method: "GET", target: "/whatever", host: "broker.internal",
			header: h("X-Original-URL", "HTTPS://Grafana.example.com:444?x", "X-Forwarded-Proto", "http", "Accept", "text/html"), dialect: DialectNginx,
			want: Request{Method: "GET", Scheme: "https", Host: "grafana.example.com", HostPort: "grafana.example.com:444", Path: "/", RawQuery: "x", Browser: true}},
		{name: "nginx X-Original-URL without path", method: "GET", target: "/", host: "broker.internal",
			header: h("X-Original-URL", "http://a.example.com"), dialect: DialectNginx,
			want: Request{Method: "GET", Scheme: "http", Host: "a.example.com", HostPort: "a.example.com", Path: "/", Browser: true}},
		{name: "traefik", method: "GET", target: "/", host: "broker:8080",
			header: h("X-Forwarded-Method", "PATCH", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "Grafana.example.com", "X-Forwarded-Uri", "/x?y"), dialect: DialectTraefik,
			want: Request{Method: "PATCH", Scheme: "https", Host: "grafana.example.com", HostPort: "grafana.example.com", Path: "/x", RawQuery: "y"}},
		{name: "traefik defaults", method: "GET", target: "/", host: "a.example.com",
			header: h("X-Forwarded-Uri", "/x"), dialect: DialectTraefik,
			want: Request{Method: "GET", Scheme: "http", Host: "a.example.com", HostPort: "a.example.com", Path: "/x", Browser: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/", nil)
			r.RequestURI, r.Host = tt.target, tt.host
			for k, v := range tt.header {
				r.Header[k] = v
			}
			got, d, err := ParseHTTPRequest(r, tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			if d != tt.dialect {
				t.Errorf("dialect %v, want %v", d, tt.dialect)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseHTTPRequestRefuses(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string
		method  string
		target  string
		host    string
		header  http.Header
		dialect Dialect
	}{
		{"empty host", "", "GET", "/", "", nil, DialectAmbassador},
		{"userinfo", "", "GET", "/", "a@b.example.com", nil, DialectAmbassador},
		{"underscore", "", "GET", "/", "a_b.example.com", nil, DialectAmbassador},
		{"space", "", "GET", "/", "a b.example.com", nil, DialectAmbassador},
		{"empty label", "", "GET", "/", "a..example.com", nil, DialectAmbassador},
		{"leading dot", "", "GET", "/", ".example.com", nil, DialectAmbassador},
		{"only a dot", "", "GET", "/", ".", nil, DialectAmbassador},
		{"empty port", "", "GET", "/", "a.example.com:", nil, DialectAmbassador},
		{"long port", "", "GET", "/", "a.example.com:123456", nil, DialectAmbassador},
		{"two ports", "", "GET", "/", "a.example.com:1:2", nil, DialectAmbassador},
		{"host too long", "", "GET", "/", strings.Repeat("a", 254), nil, DialectAmbassador},
		{"URI too long", "", "GET", "/" + strings.Repeat("a", maxURILen), "a.example.com", nil, DialectAmbassador},
		{"asterisk form", "", "OPTIONS", "*", "a.example.com", nil, DialectAmbassador},
		{"absolute form", "", "GET", "http://a.example.com/", "a.example.com", nil, DialectAmbassador},
		{"control character", "", "GET", "/a\x7f", "a.example.com", nil, DialectAmbassador},
		{"raw space", "", "GET", "/a b", "a.example.com", nil, DialectAmbassador},
		{"outside prefix", "/authz", "GET", "/other", "a.example.com", nil, DialectAmbassador},
		{"prefix without boundary", "/authz", "GET", "/authzx", "a.example.com", nil, DialectAmbassador},
		{"bad method", "", "G ET", "/", "a.example.com", nil, DialectAmbassador},
		{"bad scheme", "", "GET", "/", "a.example.com", h("X-Forwarded-Proto", "ftp"), DialectAmbassador},
		{"nginx two URIs", "", "GET", "/", "a.example.com", h("X-Original-URI", "/", "X-Original-URI", "/x"), DialectNginx},
		{"nginx URL and URI", "", "GET", "/", "a.example.com", h("X-Original-URI", "/admin", "X-Original-URL", "https://status.example.com/"), DialectNginx},
		{"nginx bad method", "", "GET", "/", "a.example.com", h("X-Original-URI", "/", "X-Original-Method", "GET\r\nX: y"), DialectNginx},
		{"nginx relative URL", "", "GET", "/", "a.example.com", h("X-Original-URL", "//a.example.com/"), DialectNginx},
		{"nginx URL scheme", "", "GET", "/", "a.example.com", h("X-Original-URL", "file:///etc/passwd"), DialectNginx},
		{"nginx URL empty scheme", "", "GET", "/", "a.example.com", h("X-Original-URL", "://a.example.com/"), DialectNginx},
		{"nginx URL userinfo", "", "GET", "/", "a.example.com", h("X-Original-URL", "https://u:p@a.example.com/"), DialectNginx},
		{"nginx URL backslash", "", "GET", "/", "a.example.com", h("X-Original-URL", `https://evil.com\@a.example.com/`), DialectNginx},
		{"traefik two hosts", "", "GET", "/", "a.example.com", h("X-Forwarded-Uri", "/", "X-Forwarded-Host", "a.example.com", "X-Forwarded-Host", "b.example.com"), DialectTraefik},
		{"traefik host list", "", "GET", "/", "a.example.com", h("X-Forwarded-Uri", "/", "X-Forwarded-Host", "a.example.com, evil.com"), DialectTraefik},
		{"traefik NUL", "", "GET", "/", "a.example.com", h("X-Forwarded-Uri", "/\x00"), DialectTraefik},
		{"both families", "", "GET", "/", "a.example.com", h("X-Forwarded-Uri", "/", "X-Original-URL", "https://a.example.com/"), DialectNginx},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Method, r.RequestURI, r.Host = tt.method, tt.target, tt.host
			for k, v := range tt.header {
				r.Header[k] = v
			}
			got, d, err := ParseHTTPRequest(r, tt.prefix)
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("ParseHTTPRequest = %+v, %v; want ErrBadRequest", got, err)
			}
			if d != tt.dialect {
				t.Errorf("dialect %v, want %v", d, tt.dialect)
			}
		})
	}
}

func TestRequestBrowser(t *testing.T) {
	for _, tt := range []struct {
		method string
		accept []string
		want   bool
	}{
		{"GET", nil, true},
		{"HEAD", nil, true},
		{"GET", []string{"text/html"}, true},
		{"GET", []string{"application/json", "Text/HTML; q=0.5"}, true},
		{"GET", []string{"*/*"}, false},
		{"GET", []string{""}, false},
		{"GET", []string{"application/json"}, false},
		{"POST", nil, false},
		{"POST", []string{"text/html"}, false},
		{"get", nil, false},
		{"OPTIONS", nil, false},
	} {
		if got := isBrowser(tt.method, tt.accept); got != tt.want {
			t.Errorf("isBrowser(%s, %q) = %v, want %v", tt.method, tt.accept, got, tt.want)
		}
	}
}

func TestRequestDialectString(t *testing.T) {
	for d, want := range map[Dialect]string{DialectAmbassador: "ambassador", DialectNginx: "nginx", DialectTraefik: "traefik", Dialect(9): "unknown"} {
		if d.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(d), d.String(), want)
		}
	}
}

// TestParseHTTPRequestAgreement: headers that say the same thing are one
// request, headers that disagree are refused — for every dialect.
func TestParseHTTPRequestAgreement(t *testing.T) {
	const (
		app = "app.example.com"
		uri = "/d/x?a=b"
	)
	ok := func(hostport string) *Request {
		return &Request{Method: "GET", Scheme: "https", Host: app, HostPort: hostport, Path: "/d/x", RawQuery: "a=b"}
	}
	tests := []struct {
		name    string
		host    string
		header  http.Header
		dialect Dialect
		want    *Request // nil: refused
	}{
		// nginx, as the brief's snippet sends it: X-Original-URL $scheme://$http_host$request_uri,
		// X-Original-URI $request_uri, X-Forwarded-Host $http_host, Host $host.
		{"nginx URL, URI, X-Forwarded-Host and Host agree", app,
			h("X-Original-URL", "https://app.example.com:8443"+uri, "X-Original-URI", uri, "X-Forwarded-Host", "app.example.com:8443"), DialectNginx, ok("app.example.com:8443")},
		{"nginx URL host case and trailing dot", "APP.example.com.",
			h("X-Original-URL", "https://App.Example.com"+uri, "X-Original-URI", uri), DialectNginx, ok(app)},
		{"nginx URI with X-Forwarded-Host equal to Host", app,
			h("X-Original-URI", uri, "X-Forwarded-Host", app, "X-Forwarded-Proto", "https"), DialectNginx, ok(app)},
		{"nginx URL alone with X-Forwarded-Host equal to its host", "ghbroker.auth.svc",
			h("X-Original-URL", "https://app.example.com"+uri, "X-Forwarded-Host", "app.example.com"), DialectNginx, ok(app)},
		{"nginx same URI twice", app,
			h("X-Original-URI", uri, "X-Original-URI", uri, "X-Forwarded-Proto", "https"), DialectNginx, ok(app)},
		{"nginx paths differ", app,
			h("X-Original-URL", "https://app.example.com/admin", "X-Original-URI", "/public"), DialectNginx, nil},
		{"nginx queries differ", app,
			h("X-Original-URL", "https://app.example.com/d/x?a=c", "X-Original-URI", uri), DialectNginx, nil},
		{"nginx URL host is not Host", app,
			h("X-Original-URL", "https://status.example.com"+uri, "X-Original-URI", uri), DialectNginx, nil},
		{"nginx URL port is not Host's", "app.example.com:9443",
			h("X-Original-URL", "https://app.example.com:8443"+uri, "X-Original-URI", uri), DialectNginx, nil},
		{"nginx X-Forwarded-Host is not Host", app,
			h("X-Original-URI", uri, "X-Forwarded-Host", "status.example.com"), DialectNginx, nil},
		{"nginx X-Forwarded-Host is not the URL's host", "ghbroker.auth.svc",
			h("X-Original-URL", "https://app.example.com"+uri, "X-Forwarded-Host", "status.example.com"), DialectNginx, nil},
		{"nginx X-Forwarded-Host port differs", app,
			h("X-Original-URL", "https://app.example.com:8443"+uri, "X-Original-URI", uri, "X-Forwarded-Host", "app.example.com:9443"), DialectNginx, nil},
		{"nginx two X-Forwarded-Host", app,
			h("X-Original-URI", uri, "X-Forwarded-Host", app, "X-Forwarded-Host", "status.example.com"), DialectNginx, nil},
		{"nginx malformed X-Forwarded-Host", app,
			h("X-Original-URI", uri, "X-Forwarded-Host", "app.example.com/@evil.com"), DialectNginx, nil},
		{"nginx two X-Original-URL", app,
			h("X-Original-URL", "https://app.example.com"+uri, "X-Original-URL", "https://status.example.com"+uri), DialectNginx, nil},
		{"nginx methods differ", app,
			h("X-Original-URI", uri, "X-Original-Method", "GET", "X-Original-Method", "POST"), DialectNginx, nil},

		// Traefik: the check's own Host is the check's, X-Forwarded-Host the original.
		{"traefik same X-Forwarded-Host twice", "ghbroker:8080",
			h("X-Forwarded-Uri", uri, "X-Forwarded-Host", app, "X-Forwarded-Host", app, "X-Forwarded-Proto", "https"), DialectTraefik, ok(app)},
		{"traefik two X-Forwarded-Uri", "ghbroker:8080",
			h("X-Forwarded-Uri", uri, "X-Forwarded-Uri", "/admin", "X-Forwarded-Host", app), DialectTraefik, nil},
		{"traefik with nginx headers, even agreeing", app,
			h("X-Forwarded-Uri", uri, "X-Original-URI", uri, "X-Forwarded-Host", app), DialectNginx, nil},
		{"nginx URL with Traefik headers", app,
			h("X-Original-URL", "https://app.example.com"+uri, "X-Forwarded-Uri", "/admin"), DialectNginx, nil},

		// Ambassador/Envoy: X-Forwarded-Host is the client's, never followed.
		{"ambassador ignores X-Forwarded-Host", app,
			h("X-Forwarded-Host", "status.example.com", "X-Forwarded-Proto", "https"), DialectAmbassador, ok(app)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RequestURI, r.Host = uri, tt.host
			for k, v := range tt.header {
				r.Header[k] = v
			}
			got, d, err := ParseHTTPRequest(r, "")
			if d != tt.dialect {
				t.Errorf("dialect %v, want %v", d, tt.dialect)
			}
			if tt.want == nil {
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("ParseHTTPRequest = %+v, %v; want ErrBadRequest", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Browser = true
			if diff := cmp.Diff(*tt.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseHTTPRequestWebSocketAndPreflight(t *testing.T) {
	tests := []struct {
		name                        string
		method                      string
		header                      http.Header
		webSocket, preflight, brows bool
	}{
		{"navigation", "GET", nil, false, false, true},
		{"WebSocket handshake", "GET", h("Connection", "Upgrade", "Upgrade", "websocket"), true, false, false},
		{"WebSocket, token lists and case", "GET", h("Connection", "keep-alive, UPGRADE", "Upgrade", "h2c, WebSocket"), true, false, false},
		{"Upgrade without Connection", "GET", h("Upgrade", "websocket"), false, false, true},
		{"Connection upgrade to h2c", "GET", h("Connection", "Upgrade", "Upgrade", "h2c"), false, false, true},
		{"preflight", "OPTIONS", h("Origin", "https://app.example.com", "Access-Control-Request-Method", "PUT"), false, true, false},
		{"OPTIONS without Access-Control-Request-Method", "OPTIONS", h("Origin", "https://app.example.com"), false, false, false},
		{"OPTIONS without Origin", "OPTIONS", h("Access-Control-Request-Method", "PUT"), false, false, false},
		{"preflight with a cookie", "OPTIONS", h("Origin", "https://a", "Access-Control-Request-Method", "PUT", "Cookie", "_ghbroker=x"), false, false, false},
		{"preflight with Authorization", "OPTIONS", h("Origin", "https://a", "Access-Control-Request-Method", "PUT", "Authorization", "Bearer x"), false, false, false},
		{"GET with CORS headers", "GET", h("Origin", "https://a", "Access-Control-Request-Method", "PUT", "Accept", "*/*"), false, false, false},
		{"POST with WebSocket headers (a handshake is a GET)", "POST", h("Connection", "Upgrade", "Upgrade", "websocket"), false, false, false},
		{"HEAD navigation", "HEAD", h("Accept", "text/html"), false, false, true},
		{"HEAD with WebSocket headers", "HEAD", h("Connection", "Upgrade", "Upgrade", "websocket", "Accept", "text/html"), false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, nginx := range []bool{false, true} {
				r := httptest.NewRequest(tt.method, "/x", nil)
				r.Host = "app.example.com"
				for k, v := range tt.header {
					r.Header[k] = v
				}
				if nginx {
					r.Method = "GET"
					r.Header.Set("X-Original-URI", "/x")
					r.Header.Set("X-Original-Method", tt.method)
				}
				got, _, err := ParseHTTPRequest(r, "")
				if err != nil {
					t.Fatal(err)
				}
				if got.WebSocket != tt.webSocket || got.Preflight != tt.preflight || got.Browser != tt.brows {
					t.Errorf("nginx %v: WebSocket %v, Preflight %v, Browser %v; want %v, %v, %v",
						nginx, got.WebSocket, got.Preflight, got.Browser, tt.webSocket, tt.preflight, tt.brows)
				}
			}
		})
	}
}

// TestDialectMixesRefused is issue #13 finding 11 in automatic mode: an
// Emissary check of /authz/admin carrying a client's X-Original-URI:
// /public was decided as nginx's check of /public. Under a prefix, nginx
// and Traefik call the bare prefix, so a check whose target names another
// request than its nginx or Traefik headers is refused.
func TestDialectMixesRefused(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{Rules: []RuleConfig{
		{Hosts: []string{"app.example.com"}, Paths: []string{"/public"}, Public: true},
		{Hosts: []string{"app.example.com"}, Allow: AllowConfig{Groups: []string{"acme/admins"}}},
	}})
	hd, err := NewHTTPHandler(HTTPOptions{Issuer: testIssuer, Verifier: newStubVerifier(), Policy: p, Prefix: "/authz"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, target string
		header       http.Header
		want         int
	}{
		{"Emissary check with a forged X-Original-URI", "/authz/admin", h("X-Original-URI", "/public"), 401},
		{"Emissary check with a forged X-Original-URL", "/authz/admin?x", h("X-Original-URL", "https://app.example.com/public"), 401},
		{"Emissary check with a forged X-Forwarded-Uri", "/authz/admin", h("X-Forwarded-Uri", "/public"), 401},
		{"nginx at the bare prefix", "/authz", h("X-Original-URI", "/public"), 200},
		{"nginx at the prefix with a slash", "/authz/", h("X-Original-URI", "/public/x?y"), 200},
		{"nginx appending the original URI", "/authz/public/x?y", h("X-Original-URI", "/public/x?y"), 200},
		{"Traefik at the bare prefix", "/authz", h("X-Forwarded-Uri", "/public", "X-Forwarded-Host", "app.example.com"), 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://placeholder/", nil)
			r.RequestURI, r.Host = tt.target, "app.example.com"
			for k, v := range tt.header {
				r.Header[k] = v
			}
			r.Header.Set("Accept", "*/*")
			w := httptest.NewRecorder()
			hd.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("%s with %v: %d, want %d (%s)", tt.target, tt.header, w.Code, tt.want, w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

// TestFixedDialect is issue #13 finding 11 with the dialect fixed: a door
// reads its own dialect's headers only, so a client's X-Original-URI
// through an Envoy that passes every header on decides nothing, and a
// check without its dialect's headers is refused.
func TestFixedDialect(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{Rules: []RuleConfig{
		{Hosts: []string{"app.example.com"}, Paths: []string{"/public"}, Public: true},
		{Hosts: []string{"app.example.com"}, Allow: AllowConfig{Groups: []string{"acme/admins"}}},
	}})
	door := func(d Dialect) http.Handler {
		hd, err := NewHTTPHandler(HTTPOptions{Issuer: testIssuer, Verifier: newStubVerifier(), Policy: p, Dialect: d})
		if err != nil {
			t.Fatal(err)
		}
		return hd
	}
	for _, tt := range []struct {
		name    string
		dialect Dialect
		target  string
		header  http.Header
		want    int
	}{
		// Envoy's http_service with broad allowed_headers, on "/": in auto
		// mode the forged header decides (200); fixed, the path does.
		{"auto: a forged X-Original-URI on / decides", DialectAuto, "/", h("X-Original-URI", "/public"), 200},
		{"envoy: a forged X-Original-URI is ignored", DialectAmbassador, "/", h("X-Original-URI", "/public"), 401},
		{"envoy: a forged X-Forwarded-Uri is ignored", DialectAmbassador, "/", h("X-Forwarded-Uri", "/public"), 401},
		{"envoy: its own path", DialectAmbassador, "/public/x", h("X-Original-URI", "/admin"), 200},
		{"nginx: X-Forwarded-Uri is ignored", DialectNginx, "/", h("X-Original-URI", "/admin", "X-Forwarded-Uri", "/public"), 401},
		{"nginx: its own header", DialectNginx, "/admin", h("X-Original-URI", "/public"), 200},
		{"nginx: without X-Original-URI", DialectNginx, "/public", nil, 401},
		{"traefik: X-Original-URI is ignored", DialectTraefik, "/", h("X-Forwarded-Uri", "/admin", "X-Original-URI", "/public"), 401},
		{"traefik: its own header", DialectTraefik, "/admin", h("X-Forwarded-Uri", "/public"), 200},
		{"traefik: without X-Forwarded-Uri", DialectTraefik, "/public", nil, 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://placeholder/", nil)
			r.RequestURI, r.Host = tt.target, "app.example.com"
			for k, v := range tt.header {
				r.Header[k] = v
			}
			r.Header.Set("Accept", "*/*")
			w := httptest.NewRecorder()
			door(tt.dialect).ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("%s door, %s with %v: %d, want %d (%s)", tt.dialect, tt.target, tt.header, w.Code, tt.want, w.Header().Get("WWW-Authenticate"))
			}
		})
	}
	for _, tt := range []struct {
		in   string
		want Dialect
	}{{"", DialectAuto}, {"auto", DialectAuto}, {"envoy", DialectAmbassador}, {"nginx", DialectNginx}, {"traefik", DialectTraefik}} {
		if got, err := ParseDialect(tt.in); got != tt.want || err != nil {
			t.Errorf("ParseDialect(%q) = %v, %v", tt.in, got, err)
		}
	}
	if _, err := ParseDialect("ambassador-http"); !errors.Is(err, ErrUnknownDialect) {
		t.Errorf("ParseDialect(unknown) = %v", err)
	}
}

// TestValidHostName compares the one-pass host check with its definition.
func TestValidHostName(t *testing.T) {
	def := func(h string) bool {
		return h != "" && len(h) <= maxHostLen && validHostChars(h) &&
			h[0] != '.' && h[len(h)-1] != '.' && !strings.Contains(h, "..")
	}
	for _, h := range []string{"", ".", "..", "a", "a.", ".a", "a..b", "a.b", "A-1.example.COM", "a_b", "a b", "é.example",
		"x.-y", strings.Repeat("a", maxHostLen), strings.Repeat("a", maxHostLen+1), "a...b", "a.b.", "1.2.3.4", "a\x00b"} {
		if got, want := validHostName(h), def(h); got != want {
			t.Errorf("validHostName(%q) = %v, want %v", h, got, want)
		}
	}
}
