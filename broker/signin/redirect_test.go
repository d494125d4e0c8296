package signin

import (
	"net/url"
	"testing"
)

func testServer(t testing.TB, issuer string, domains ...string) *redirects {
	t.Helper()
	s, err := newRedirects(issuer, domains)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSafeRedirect(t *testing.T) {
	s := testServer(t, "https://auth.example.com", ".example.com", "status.partner.org")
	home := "https://auth.example.com/"
	tests := []struct{ rd, want string }{
		{"", home},
		{"/", "https://auth.example.com/"},
		{"/settings?tab=1", "https://auth.example.com/settings?tab=1"},
		{"https://grafana.example.com/d/x?orgId=1", "https://grafana.example.com/d/x?orgId=1"},
		{"https://grafana.example.com/d/x#frag", "https://grafana.example.com/d/x"},
		{"https://example.com/", "https://example.com/"},
		{"https://status.partner.org/", "https://status.partner.org/"},
		{"https://GRAFANA.example.com/", "https://GRAFANA.example.com/"},
		// Hostile.
		{"//evil.com", home},
		{"//evil.com/path", home},
		{"/\\evil.com", home},
		{"\\\\evil.com", home},
		{"https://evil.com\\@example.com", home},
		{"https://evil.com%5C@example.com", home},
		{"https://example.com@evil.com/", home},
		{"https://user:pass@grafana.example.com/", home},
		{"javascript:alert(1)", home},
		{"JaVaScRiPt:alert(1)", home},
		{"data:text/html,<script>alert(1)</script>", home},
		{"https://example.com.evil.com/", home},
		{"https://evilexample.com/", home},
		{"https://grafana.example.com:8443/", home},
		{"http://grafana.example.com/", home},
		{"https:grafana.example.com", home},
		{"https:/grafana.example.com", home},
		{"https://%65vil.com/", home},
		{"https://grafana.example.com%2eevil.com/", home},
		{"https://evil.com%00.example.com/", home},
		{"https://grafana.example.com\t/", home},
		{"https://grafana.example.com\n.evil.com/", home},
		{" https://evil.com", home},
		{"https://[::1]/", home},
		{"https://127.0.0.1/", home},
		{"https://status.partner.org.evil.com/", home},
		{"https://sub.status.partner.org/", home},
		{"ftp://grafana.example.com/", home},
		{"/%2F%2Fevil.com", "https://auth.example.com/%2F%2Fevil.com"},
		{"https://grafana.example.com//evil.com/", "https://grafana.example.com/evil.com/"},
	}
	for _, tt := range tests {
		got, _ := s.safe(tt.rd)
		if got != tt.want {
			t.Errorf("safeRedirect(%q) = %q, want %q", tt.rd, got, tt.want)
		}
	}
}

func TestSafeRedirectDevAllowsHTTPOnIssuerPort(t *testing.T) {
	s := testServer(t, "http://localhost:8080", ".localhost")
	for rd, want := range map[string]string{
		"http://app.localhost:8080/x": "http://app.localhost:8080/x",
		"http://app.localhost:9999/x": "http://localhost:8080/",
		"http://app.localhost/x":      "http://localhost:8080/",
	} {
		if got, _ := s.safe(rd); got != want {
			t.Errorf("safeRedirect(%q) = %q, want %q", rd, got, want)
		}
	}
}

func FuzzSafeRedirect(f *testing.F) {
	s := testServer(f, "https://auth.example.com", ".example.com")
	for _, seed := range []string{"/", "https://grafana.example.com/x", "//evil.com", "https://evil.com\\@example.com", "https://a.example.com@evil.com"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rd string) {
		got, _ := s.safe(rd)
		u, ok := parseForCheck(got)
		if !ok {
			t.Fatalf("safeRedirect(%q) = %q, not a parseable URL", rd, got)
		}
		if !s.hostAllowed(u) {
			t.Fatalf("safeRedirect(%q) = %q leaves the allowed domains", rd, got)
		}
	})
}

// parseForCheck returns the host a browser would navigate to for u.
func parseForCheck(u string) (string, bool) {
	pu, err := url.Parse(u)
	if err != nil || pu.User != nil || pu.Host == "" {
		return "", false
	}
	return pu.Hostname(), true
}
