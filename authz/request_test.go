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
			header: h("X-Original-URI", "/d/x?a=b", "X-Original-Method", "DELETE", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.com"), dialect: DialectNginx,
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
