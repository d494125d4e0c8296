package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// checkLoginRedirect fails unless loc is the plain login or carries an rd
// whose host the policy names, with an http(s) scheme and no userinfo.
func checkLoginRedirect(t *testing.T, p *Policy, loc string) {
	t.Helper()
	if loc == testIssuer+"/login" {
		return
	}
	q, ok := strings.CutPrefix(loc, testIssuer+"/login?rd=")
	if !ok {
		t.Fatalf("login redirect %q is neither plain nor with rd", loc)
	}
	rd, err := url.QueryUnescape(q)
	if err != nil {
		t.Fatalf("rd %q does not unescape: %v", q, err)
	}
	u, err := url.Parse(rd)
	if err != nil {
		t.Fatalf("rd %q does not parse: %v", rd, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.User != nil || u.Opaque != "" {
		t.Fatalf("rd %q: scheme %q, userinfo %v, opaque %q", rd, u.Scheme, u.User, u.Opaque)
	}
	if !p.KnowsHost(u.Hostname()) {
		t.Fatalf("rd %q names host %q, which no rule names", rd, u.Hostname())
	}
}

func FuzzParseHTTPRequest(f *testing.F) {
	seeds := [][10]string{
		{"GET", "grafana.example.com", "/authz/d/x?y=1", "/authz", "", "", "", "", "https", "text/html"},
		{"GET", "Grafana.Example.com:8443", "/d/x", "", "evil.com", "", "", "", "", ""},
		{"GET", "broker:8080", "/authz", "/authz", "grafana.example.com", "/d?x", "", "", "https", ""},
		{"GET", "broker", "/", "", "", "", "https://grafana.example.com/a/../b", "", "", "text/html"},
		{"POST", "grafana.example.com", "/authz", "/authz", "", "", "", "/x?y", "http", "*/*"},
		{"GET", "evil.com@grafana.example.com", "/", "", "", "", "", "", "", ""},
		{"GET", "grafana.example.com", "/%2e%2e/admin", "", "", "", "", "", "", ""},
		{"GET", "a.tools.example.com.", "/authz?", "/authz", "", "", "", "", "HTTPS,http", ""},
		{"OPTIONS", "kibana.example.com", "*", "", "", "", "", "", "", ""},
		{"GET", "x", "/", "", "grafana.example.com/\\evil.com", "//evil.com", "", "", "", ""},
		// Found by fuzzing: a Request not built by the parser, with a
		// control character in the query and a leading-dot host.
		{"0", ".eXAmple.Com", "/", "0", "", "\t", "", "", "http", "0"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9])
	}
	p := mustPolicy(f, testPolicyConfig())
	v := newStubVerifier()
	type door struct {
		prefix  string
		dialect Dialect
	}
	handlers := map[door]http.Handler{}
	for _, prefix := range []string{"", "/authz"} {
		for _, d := range []Dialect{DialectAuto, DialectAmbassador, DialectNginx, DialectTraefik} {
			hd, err := NewHTTPHandler(HTTPOptions{Issuer: testIssuer, Verifier: v, Policy: p, Prefix: prefix, Dialect: d})
			if err != nil {
				f.Fatal(err)
			}
			handlers[door{prefix, d}] = hd
		}
	}
	f.Fuzz(func(t *testing.T, method, host, target, prefix, xfHost, xfURI, xoURL, xoURI, proto, accept string) {
		if prefix != "" {
			prefix = "/authz"
		}
		r := &http.Request{Method: method, Host: host, RequestURI: target, URL: &url.URL{Path: "/"}, Header: http.Header{}}
		for k, val := range map[string]string{
			"X-Forwarded-Host": xfHost, "X-Forwarded-Uri": xfURI, "X-Original-Url": xoURL, "X-Original-Uri": xoURI,
			"X-Forwarded-Proto": proto, "Accept": accept,
		} {
			if val != "" {
				r.Header[k] = []string{val}
			}
		}
		if strings.HasPrefix(accept, "x") {
			r.Header["Cookie"] = []string{"_ghbroker=" + sessSRE}
		}

		dialect := Dialect(len(method) % 4) // every dialect, fixed or not
		req, got, err := ParseHTTPRequestAs(r, prefix, dialect)
		if dialect != DialectAuto && got != dialect {
			t.Fatalf("a door fixed to %s parsed a check as %s", dialect, got)
		}
		if err == nil {
			if !strings.HasPrefix(req.Path, "/") || req.Host == "" || len(req.Host) > maxHostLen || !validHostChars(req.Host) || hasUpper(req.Host) {
				t.Fatalf("accepted a bad request: %+v", req)
			}
			for _, c := range []*Request{&req} {
				_ = p.Evaluate(nil, c, nil)
				_ = p.Evaluate(sre, c, &Extensions{AllowUsers: []string{host}})
			}
			checkLoginRedirect(t, p, LoginRedirect(testIssuer, req, p))
		}
		// LoginRedirect holds its promise on any Request, not only parsed ones.
		checkLoginRedirect(t, p, LoginRedirect(testIssuer, Request{Scheme: proto, Host: host, HostPort: xfHost, Path: target, RawQuery: xfURI}, p))

		// The door itself answers only 200, 302, 401 or 403.
		w := httptest.NewRecorder()
		handlers[door{prefix, dialect}].ServeHTTP(w, r)
		switch w.Code {
		case 200, 401, 403:
		case 302:
			checkLoginRedirect(t, p, w.Header().Get("Location"))
		default:
			t.Fatalf("status %d", w.Code)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Fatal("no Cache-Control: no-store")
		}
	})
}

func FuzzGRPCCheck(f *testing.F) {
	f.Add("GET", "https", "grafana.example.com", "/d?x", "text/html", "_ghbroker="+sessSRE, "", "acme/sre")
	f.Add("GET", "", "evil.com", "/", "", "", "Bearer x,Bearer y", "")
	f.Add("PUT", "HTTP", "status.example.com:80", "*", "*/*", "_ghbroker.1=a", "Basic x", ",,")
	c, err := newChecker(testIssuer, newStubVerifier(), mustPolicy(f, testPolicyConfig()), "", nil, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	g := &grpcAuthz{c: c, memo: newHeaderMemo()}
	f.Fuzz(func(t *testing.T, method, scheme, host, path, accept, cookie, authz, groups string) {
		hs := map[string]string{":authority": host, ":path": path, ":method": method, "accept": accept, "cookie": cookie, "authorization": authz}
		res, err := g.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: method, Scheme: scheme, Host: host, Path: path, Headers: hs,
			}},
			ContextExtensions: map[string]string{"allow_groups": groups},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if d := res.GetDeniedResponse(); d != nil {
			switch d.GetStatus().GetCode() {
			case typev3.StatusCode_Unauthorized, typev3.StatusCode_Forbidden:
			case typev3.StatusCode_Found:
				for _, h := range d.GetHeaders() {
					if h.GetHeader().GetKey() == "location" {
						checkLoginRedirect(t, c.policy, h.GetHeader().GetValue())
					}
				}
			default:
				t.Fatalf("denied with %v", d.GetStatus().GetCode())
			}
		} else if res.GetOkResponse() == nil {
			t.Fatalf("neither ok nor denied: %v", res)
		}
	})
}
