package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// upstreamReadings is a model, written apart from the check's own code, of
// how upstream routers read the raw path that a gateway forwards: every
// combination of decoding it zero, one or two times, taking "\" for "/",
// dropping ";parameters" (before decoding, as Tomcat does, or after), cutting
// at "#", and then leaving dot segments alone, resolving them, or cleaning
// the path fully.
func upstreamReadings(raw string) []string {
	var out []string
	for decodes := 0; decodes <= 2; decodes++ {
		for _, params := range []string{"keep", "before", "after"} {
			s := raw
			if params == "before" {
				s = modelStripParams(s)
			}
			ok := true
			for range decodes {
				d, err := url.PathUnescape(s)
				if err != nil {
					ok = false
					break
				}
				s = d
			}
			if !ok {
				continue
			}
			if params == "after" {
				s = modelStripParams(s)
			}
			for _, backslash := range []bool{false, true} {
				for _, hash := range []bool{false, true} {
					r := s
					if backslash {
						r = strings.ReplaceAll(r, `\`, "/")
					}
					if hash {
						r, _, _ = strings.Cut(r, "#")
					}
					out = append(out, r, modelResolveDots(r), path.Clean(r))
				}
			}
		}
	}
	return out
}

func modelStripParams(s string) string {
	var b strings.Builder
	inParam := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '/':
			inParam = false
		case s[i] == ';':
			inParam = true
		}
		if !inParam {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// modelResolveDots resolves "." and ".." segments and nothing else.
func modelResolveDots(s string) string {
	var stack []string
	parts := strings.Split(s, "/")
	for i, seg := range parts {
		if i == 0 {
			continue
		}
		switch seg {
		case ".":
		case "..":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		default:
			stack = append(stack, seg)
		}
	}
	return "/" + strings.Join(stack, "/")
}

// modelUnder reports whether a reading is under the prefix, segment-wise,
// ignoring case when fold is set.
func modelUnder(reading, prefix string, fold bool) bool {
	rs, ps := strings.Split(reading, "/"), strings.Split(prefix, "/")
	if len(rs) < len(ps) {
		return false
	}
	for i := range ps {
		if ps[i] != rs[i] && !(fold && strings.EqualFold(ps[i], rs[i])) {
			return false
		}
	}
	return true
}

// FuzzPathOneMeaning is the differential test of finding 2 of issue #13:
// whatever path and dialect a check arrives in, when the door lets an
// anonymous request through as public, no reading an upstream may make of
// the path it is forwarded reaches the protected part of the host.
//
// app.example.com: /public is public, everything else needs acme/admins.
// win.example.com: the same, case-insensitively (an IIS upstream).
// git.example.com: /public opts in to insecure_allow_unnormalized_paths.
func FuzzPathOneMeaning(f *testing.F) {
	for _, s := range []string{
		"/public/x", "/admin/../public", "/admin%2F..%2Fpublic", "/admin/x/../../public/y", "/public/..;/admin",
		"/public/..\\admin", "/public/%252e%252e/admin", "/PUBLIC/../ADMIN", "/public#/../admin", "/public/%2e%2e/admin",
		"/public;x/../admin", "/public//..//admin", "/public/a%2Fb", "/public/%C0%AE%C0%AE/admin", "/public?x=/../admin",
	} {
		for dialect := range uint8(4) {
			f.Add(s, dialect, "app.example.com")
		}
		f.Add(s, uint8(0), "win.example.com")
		f.Add(s, uint8(3), "git.example.com")
	}
	rules := []RuleConfig{
		{Hosts: []string{"app.example.com"}, Paths: []string{"/public"}, Public: true},
		{Hosts: []string{"win.example.com"}, Paths: []string{"/public"}, Public: true, CaseInsensitive: true},
		{Hosts: []string{"git.example.com"}, Paths: []string{"/public"}, Public: true, InsecureAllowUnnormalizedPaths: true},
		{Hosts: []string{"app.example.com", "win.example.com", "git.example.com"}, Allow: AllowConfig{Groups: []string{"acme/admins"}}},
	}
	p := mustPolicy(f, PolicyConfig{Rules: rules})
	v := newStubVerifier()
	plain, err := NewHTTPHandler(HTTPOptions{Issuer: testIssuer, Verifier: v, Policy: p})
	if err != nil {
		f.Fatal(err)
	}
	prefixed, err := NewHTTPHandler(HTTPOptions{Issuer: testIssuer, Verifier: v, Policy: p, Prefix: "/authz"})
	if err != nil {
		f.Fatal(err)
	}
	c, err := newChecker(testIssuer, v, p, "", nil, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	g := &grpcAuthz{c: c, memo: newHeaderMemo()}

	f.Fuzz(func(t *testing.T, target string, dialect uint8, host string) {
		switch host {
		case "app.example.com", "win.example.com", "git.example.com":
		default:
			host = "app.example.com"
		}
		if !strings.HasPrefix(target, "/") {
			return
		}
		// What the gateway forwards to the upstream: the original request
		// target, as sent.
		upstream, _, _ := strings.Cut(target, "?")
		var allowed bool
		switch dialect % 4 {
		case 0, 1, 2: // Envoy HTTP with a prefix, nginx, Traefik
			r := &http.Request{Method: http.MethodGet, Host: host, URL: &url.URL{Path: "/"}, Header: http.Header{"Accept": {"*/*"}}}
			hd := plain
			switch dialect % 4 {
			case 0:
				r.RequestURI, hd = "/authz"+target, prefixed
			case 1:
				r.RequestURI = "/"
				r.Header["X-Original-Uri"] = []string{target}
			case 2:
				r.RequestURI, r.Host = "/", "ghbroker:8081"
				r.Header["X-Forwarded-Uri"] = []string{target}
				r.Header["X-Forwarded-Host"] = []string{host}
			}
			w := httptest.NewRecorder()
			hd.ServeHTTP(w, r)
			allowed = w.Code == http.StatusOK
		case 3: // gRPC ext_authz
			res, err := g.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
					Method: http.MethodGet, Scheme: "https", Host: host, Path: target, Headers: map[string]string{"accept": "*/*"},
				}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			allowed = res.GetOkResponse() != nil
		}
		if !allowed {
			return
		}
		fold := host == "win.example.com"
		for _, rd := range upstreamReadings(upstream) {
			if !modelUnder(rd, "/public", fold) {
				t.Fatalf("%s %q (dialect %d) was allowed anonymously as /public, but an upstream may read it as %q", host, target, dialect%4, rd)
			}
		}
	})
}
