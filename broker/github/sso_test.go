package github

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSSOHeader(t *testing.T) {
	const u = "https://github.com/orgs/acme/sso?authorization_request=AbC123"
	tests := []struct {
		name   string
		values []string
		want   ssoHeader
	}{
		{"required with url", []string{"required; url=" + u}, ssoHeader{required: true, url: u}},
		{"case and spacing", []string{"  Required ;URL=" + u + " "}, ssoHeader{required: true, url: u}},
		{"required without url", []string{"required"}, ssoHeader{required: true}},
		{"two url parameters", []string{"required; url=" + u + "; url=https://evil.example/"}, ssoHeader{required: true}},
		{"two urls in one parameter", []string{"required; url=" + u + ", https://evil.example/"}, ssoHeader{required: true}},
		{"quoted url", []string{`required; url="` + u + `"`}, ssoHeader{required: true}},
		{"url too long", []string{"required; url=" + u + strings.Repeat("a", maxSSOURLLen)}, ssoHeader{required: true}},
		{"several header lines", []string{"required; url=" + u, "required; url=" + u}, ssoHeader{}},
		{"huge value", []string{"required; url=" + u + ";" + strings.Repeat("x", maxSSOHeaderLen)}, ssoHeader{}},
		{"garbage", []string{"\x00\xff;;;==="}, ssoHeader{}},
		{"empty", []string{""}, ssoHeader{}},
		{"absent", nil, ssoHeader{}},
		{"partial results", []string{"partial-results; organizations=21955855,20582480"}, ssoHeader{partialOrgIDs: []int64{21955855, 20582480}}},
		{"partial results with a bad id", []string{"partial-results; organizations=21955855,x"}, ssoHeader{}},
		{"partial results with a negative id", []string{"partial-results; organizations=-1"}, ssoHeader{}},
		{"partial results, too many ids", []string{"partial-results; organizations=" + strings.Repeat("1,", maxSSOOrgIDs) + "1"}, ssoHeader{}},
		{"partial results without ids", []string{"partial-results"}, ssoHeader{}},
		{"unknown form", []string{"optional; url=" + u}, ssoHeader{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseSSOHeader(tt.values)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(ssoHeader{})); diff != "" {
				t.Errorf("parseSSOHeader(%q) (-want +got):\n%s", tt.values, diff)
			}
		})
	}
}

func FuzzParseSSOHeader(f *testing.F) {
	for _, s := range []string{
		"required; url=https://github.com/orgs/acme/sso?authorization_request=x",
		"partial-results; organizations=1,2",
		"required; url=;url=",
	} {
		f.Add(s)
	}
	c, err := New(Config{ClientID: "x", ClientSecret: "y", WebURL: "https://github.com", APIURL: "https://api.github.com", RedirectURL: "https://a.example.com/cb"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := parseSSOHeader([]string{v})
		if len(h.url) > maxSSOURLLen || len(h.partialOrgIDs) > maxSSOOrgIDs {
			t.Fatalf("parseSSOHeader(%q) = %+v: over its bounds", v, h)
		}
		if u := c.trustedSSOURL(h.url); u != "" {
			p, err := url.Parse(u)
			if err != nil || p.Scheme != "https" || p.Host != "github.com" || p.User != nil {
				t.Fatalf("trustedSSOURL(%q) = %q, off the web host", h.url, u)
			}
		}
	})
}

func TestTrustedSSOURL(t *testing.T) {
	tests := []struct {
		web, raw, want string
	}{
		{"https://github.com", "https://github.com/orgs/acme/sso?authorization_request=x", "https://github.com/orgs/acme/sso?authorization_request=x"},
		{"https://github.com", "https://GitHub.com/orgs/acme/sso", "https://github.com/orgs/acme/sso"},
		{"https://github.com", "http://github.com/orgs/acme/sso", ""},
		{"https://github.com", "https://evil.example/orgs/acme/sso", ""},
		{"https://github.com", "https://github.com.evil.example/orgs/acme/sso", ""},
		{"https://github.com", "https://github.com:8443/orgs/acme/sso", ""},
		{"https://github.com", "https://user@github.com/orgs/acme/sso", ""},
		{"https://github.com", "//github.com/orgs/acme/sso", ""},
		{"https://github.com", "/orgs/acme/sso", ""},
		{"https://github.com", "javascript:alert(1)", ""},
		{"https://ghes.example.com", "https://ghes.example.com/orgs/acme/sso", "https://ghes.example.com/orgs/acme/sso"},
		{"https://ghes.example.com", "https://github.com/orgs/acme/sso", ""},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/orgs/acme/sso", "http://127.0.0.1:8080/orgs/acme/sso"},
		{"http://127.0.0.1:8080", "https://127.0.0.1:8080/orgs/acme/sso", "https://127.0.0.1:8080/orgs/acme/sso"},
		{"http://127.0.0.1:8080", "ftp://127.0.0.1:8080/orgs/acme/sso", ""},
	}
	for _, tt := range tests {
		c, err := New(Config{ClientID: "x", ClientSecret: "y", WebURL: tt.web, APIURL: tt.web + "/api/v3", RedirectURL: "https://a.example.com/cb"})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.trustedSSOURL(tt.raw); got != tt.want {
			t.Errorf("web %s: trustedSSOURL(%q) = %q, want %q", tt.web, tt.raw, got, tt.want)
		}
	}
}

// ssoForbidden answers as GitHub does for a resource of an organization
// whose SAML SSO the token is not authorized for.
func ssoForbidden(header string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if header != "" {
			w.Header().Set("X-GitHub-SSO", header)
		}
		writeJSON(w, http.StatusForbidden, map[string]string{
			"message":           "Resource protected by organization SAML enforcement. You must grant your Personal Access token access to this organization.",
			"documentation_url": "https://docs.github.com/articles/authenticating-to-a-github-organization-with-saml-single-sign-on/",
		})
	}
}

func TestFetchIdentitySSO(t *testing.T) {
	f := newFake(t, "/api/v3")
	f.memberships = []map[string]any{membership("acme", "active")}
	f.teams = []map[string]any{teamJSON("acme", "sre", "")}
	srv := f.start()
	web := srv.URL
	f.orgs = map[string]http.HandlerFunc{
		"samlco":  ssoForbidden("required; url=" + web + "/orgs/samlco/sso?authorization_request=A1"),
		"evilco":  ssoForbidden("required; url=https://evil.example/orgs/evilco/sso"),
		"bareco":  ssoForbidden("required"),
		"twiceco": ssoForbidden("required; url=" + web + "/orgs/twiceco/sso; url=" + web + "/x"),
		"plainco": ssoForbidden(""), // a 403 without the header is not SSO
	}
	c := newTestClient(t, srv, "/api/v3", nil)
	id, err := c.FetchIdentity(t.Context(), "gho_tok", []string{"acme", "SAMLco", "evilco", "bareco", "twiceco", "plainco"})
	if err != nil {
		t.Fatal(err)
	}
	want := []SSOOrg{
		{Org: "bareco"},
		{Org: "evilco"}, // URL off the GitHub host: dropped, never followed
		{Org: "SAMLco", URL: web + "/orgs/samlco/sso?authorization_request=A1"},
		{Org: "twiceco"},
	}
	if diff := cmp.Diff(want, id.SSORequired); diff != "" {
		t.Errorf("SSORequired (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"acme"}, id.Orgs); diff != "" {
		t.Errorf("Orgs (-want +got):\n%s", diff)
	}
	if len(id.RestrictedOrgs) != 0 {
		t.Errorf("RestrictedOrgs = %v, want none", id.RestrictedOrgs)
	}
}

// TestFetchIdentitySSOListRefused: a list GitHub refuses for SAML SSO is
// read as empty, its organization recorded when the URL names it, and the
// sign-in goes on; a list with partial results is used as it is.
func TestFetchIdentitySSOListRefused(t *testing.T) {
	f := newFake(t, "/api/v3")
	f.teams = []map[string]any{teamJSON("acme", "sre", "")}
	srv := f.start()
	f.orgs = map[string]http.HandlerFunc{
		"acme": func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, membership("acme", "active")) },
	}
	f.hook = func(endpoint string, w http.ResponseWriter, r *http.Request) bool {
		switch endpoint {
		case "/user/teams":
			ssoForbidden("required; url="+srv.URL+"/orgs/teamsco/sso?authorization_request=B2")(w, r)
			return true
		case "/user/memberships/orgs":
			w.Header().Set("X-GitHub-SSO", "partial-results; organizations=21955855")
		}
		return false
	}
	c := newTestClient(t, srv, "/api/v3", nil)
	id, err := c.FetchIdentity(t.Context(), "gho_tok", []string{"acme"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]SSOOrg{{Org: "teamsco", URL: srv.URL + "/orgs/teamsco/sso?authorization_request=B2"}}, id.SSORequired); diff != "" {
		t.Errorf("SSORequired (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"acme"}, id.Orgs); diff != "" {
		t.Errorf("Orgs (-want +got):\n%s", diff)
	}
	if len(id.Teams) != 0 {
		t.Errorf("Teams = %v, want none (the list was refused)", id.Teams)
	}
}
