package githubfake

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestGetUser(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	tests := []struct {
		login       string
		scopes      []string
		wantEmail   any
		wantPrivate bool
	}{
		{"alice", nil, nil, false},
		{"bob", []string{"read:org"}, "bob@example.com", false},
		{"alice", []string{"user"}, nil, true},
		{"alice", []string{"read:user"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %v", tc.login, tc.scopes), func(t *testing.T) {
			tok, _ := fake.IssueToken(tc.login, tc.scopes...)
			resp := apiGet(t, nil, ts.URL+"/user", tok)
			wantStatus(t, resp, http.StatusOK)
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if got := resp.Header.Get("X-OAuth-Scopes"); got != strings.Join(tc.scopes, ", ") {
				t.Errorf("X-OAuth-Scopes = %q", got)
			}
			u := decode[map[string]any](t, resp)
			for _, k := range []string{"login", "id", "node_id", "avatar_url", "html_url", "type", "site_admin", "name", "email", "created_at", "updated_at"} {
				if _, ok := u[k]; !ok {
					t.Errorf("GET /user lacks %q", k)
				}
			}
			if u["login"] != tc.login || u["type"] != "User" {
				t.Errorf("login/type = %v/%v", u["login"], u["type"])
			}
			if u["email"] != tc.wantEmail {
				t.Errorf("email = %v, want %v", u["email"], tc.wantEmail)
			}
			if _, ok := u["two_factor_authentication"]; ok != tc.wantPrivate {
				t.Errorf("private fields present = %v, want %v", ok, tc.wantPrivate)
			}
		})
	}
	alice, _ := fake.IssueToken("alice")
	u := decode[map[string]any](t, apiGet(t, nil, ts.URL+"/user", alice))
	if u["id"] != float64(1001) || u["node_id"] != "MDQ6VXNlcjEwMDE=" || u["html_url"] != ts.URL+"/alice" || u["name"] != "Alice Example" {
		t.Errorf("alice = %v", u)
	}
}

func TestEmailsNeedScope(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	for _, tc := range []struct {
		scopes []string
		want   int
	}{{nil, 404}, {[]string{"read:org"}, 404}, {[]string{"user:email"}, 200}, {[]string{"user"}, 200}} {
		tok, _ := fake.IssueToken("alice", tc.scopes...)
		resp := apiGet(t, nil, ts.URL+"/user/emails", tok)
		wantStatus(t, resp, tc.want)
		if tc.want == 404 {
			if e := decode[apiError](t, resp); e.Message != "Not Found" || e.Status != "404" {
				t.Errorf("%v: body %+v", tc.scopes, e)
			}
			continue
		}
		got := decode[[]emailJSON](t, resp)
		if len(got) != 2 || got[0].Email != "alice@example.com" || !got[0].Primary || !got[0].Verified ||
			got[0].Visibility == nil || *got[0].Visibility != "private" || got[1].Visibility != nil {
			t.Errorf("%v: emails %+v", tc.scopes, got)
		}
	}
}

func TestUserOrgsNeedScope(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	tok, _ := fake.IssueToken("carol", "user:email")
	resp := apiGet(t, nil, ts.URL+"/user/orgs", tok)
	wantStatus(t, resp, http.StatusForbidden)
	if e := decode[apiError](t, resp); e.Message != "You need at least read:org scope or user scope to list your organizations." {
		t.Errorf("message %q", e.Message)
	}
	tok, _ = fake.IssueToken("carol", "admin:org")
	orgs := decode[[]orgSimpleJSON](t, apiGet(t, nil, ts.URL+"/user/orgs", tok))
	if len(orgs) != 2 || orgs[0].Login != "acme" || orgs[1].Login != "globex" || orgs[0].URL != ts.URL+"/orgs/acme" {
		t.Errorf("orgs = %+v", orgs)
	}
}

func TestUserTeams(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	tok, _ := fake.IssueToken("carol", "read:org")
	teams := decode[[]teamFullJSON](t, apiGet(t, nil, ts.URL+"/api/v3/user/teams", tok))
	var slugs []string
	for _, tm := range teams {
		slugs = append(slugs, tm.Organization.Login+"/"+tm.Slug)
	}
	if want := []string{"acme/sre", "acme/sre-oncall", "acme/dev", "globex/platform"}; !slices.Equal(slugs, want) {
		t.Fatalf("teams = %v, want %v", slugs, want)
	}
	oncall := teams[1]
	if oncall.Parent == nil || oncall.Parent.Slug != "sre" || oncall.Parent.ID != 9001 {
		t.Errorf("sre-oncall parent = %+v", oncall.Parent)
	}
	if teams[0].Parent != nil || teams[0].MembersCount != 2 || teams[0].Privacy != "closed" {
		t.Errorf("sre = %+v", teams[0])
	}
	if !strings.HasPrefix(oncall.URL, ts.URL+"/api/v3/organizations/501/team/9002") || oncall.HTMLURL != ts.URL+"/orgs/acme/teams/sre-oncall" {
		t.Errorf("urls %s %s", oncall.URL, oncall.HTMLURL)
	}
	tok, _ = fake.IssueToken("carol")
	wantStatus(t, apiGet(t, nil, ts.URL+"/user/teams", tok), http.StatusForbidden)
	tok, _ = fake.IssueToken("carol", "repo")
	wantStatus(t, apiGet(t, nil, ts.URL+"/user/teams", tok), http.StatusOK)
}

func TestPaginationThroughThreeHundredTeams(t *testing.T) {
	fake, ts := newFake(t, ManyTeams("bigcorp", 300, "tess"), Options{})
	tok, _ := fake.IssueToken("tess", "read:org")
	tests := []struct {
		name, base, query string
		wantPages         int
	}{
		{"root default per_page", "", "", 10},
		{"root per_page=100", "", "?per_page=100", 3},
		{"ghes per_page=100", "/api/v3", "?per_page=100", 3},
		{"ghes per_page above max", "/api/v3", "?per_page=500", 3},
		{"per_page=7", "", "?per_page=7", 43},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := ts.URL + tc.base + "/user/teams" + tc.query
			seen := map[int64]bool{}
			pages := 0
			for next != "" {
				resp := apiGet(t, nil, next, tok)
				wantStatus(t, resp, http.StatusOK)
				pages++
				link := resp.Header.Get("Link")
				for _, rel := range []string{"next", "last", "first", "prev"} {
					if u := linkRel(link, rel); u != "" && !strings.HasPrefix(u, ts.URL+tc.base+"/user/teams?") {
						t.Fatalf("rel=%s URL %s does not keep base %q", rel, u, ts.URL+tc.base)
					}
				}
				if pages == 1 && (linkRel(link, "prev") != "" || linkRel(link, "first") != "") {
					t.Errorf("first page has prev/first: %s", link)
				}
				for _, tm := range decode[[]teamFullJSON](t, resp) {
					if seen[tm.ID] {
						t.Fatalf("team %d seen twice", tm.ID)
					}
					seen[tm.ID] = true
				}
				next = linkRel(link, "next")
				if next == "" && linkRel(link, "last") != "" {
					t.Errorf("last page still has rel=last: %s", link)
				}
			}
			if pages != tc.wantPages || len(seen) != 300 {
				t.Errorf("pages = %d (want %d), teams = %d (want 300)", pages, tc.wantPages, len(seen))
			}
		})
	}
	t.Run("single page has no Link", func(t *testing.T) {
		tok, _ := fake.IssueToken("tess", "read:org")
		resp := apiGet(t, nil, ts.URL+"/user/orgs", tok)
		if l := resp.Header.Get("Link"); l != "" {
			t.Errorf("Link = %q, want none", l)
		}
	})
}

func TestOrgMembershipCheckHop(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	alice, _ := fake.IssueToken("alice", "read:org") // acme member
	dave, _ := fake.IssueToken("dave", "read:org")   // globex only
	tests := []struct {
		name, token, path string
		follow            bool
		want              int
		wantLocation      string
	}{
		{"member asks about member", alice, "/orgs/acme/members/bob", false, 204, ""},
		{"member asks about non-member", alice, "/orgs/acme/members/dave", false, 404, ""},
		{"case-insensitive names", alice, "/orgs/ACME/members/Bob", false, 204, ""},
		{"non-member gets 302", dave, "/orgs/acme/members/bob", false, 302, "/orgs/acme/public_members/bob"},
		{"ghes 302 keeps base", dave, "/api/v3/orgs/acme/members/bob", false, 302, "/api/v3/orgs/acme/public_members/bob"},
		{"followed 302 lands on 204", dave, "/orgs/acme/members/bob", true, 204, ""},
		{"followed 302 lands on 404", dave, "/orgs/acme/members/erin", true, 404, ""},
		{"unknown org", alice, "/orgs/nope/members/bob", false, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var client *http.Client
			if tc.follow {
				client = http.DefaultClient // keeps Authorization: same host
			}
			resp := apiGet(t, client, ts.URL+tc.path, tc.token)
			wantStatus(t, resp, tc.want)
			if tc.wantLocation != "" && resp.Header.Get("Location") != ts.URL+tc.wantLocation {
				t.Errorf("Location = %q, want %q", resp.Header.Get("Location"), ts.URL+tc.wantLocation)
			}
		})
	}
	calls := fake.Calls()
	if calls["GET /orgs/{org}/public_members/{username}"] != 2 {
		t.Errorf("public_members calls = %d, want 2 (both followed hops)", calls["GET /orgs/{org}/public_members/{username}"])
	}
}

func TestOAuthAppRestriction(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	tok, _ := fake.IssueToken("alice", "read:org")
	fake.SetOrgRestricted("acme", true)
	const msg = "Although you appear to have the correct authorization credentials, the `acme` organization has enabled OAuth App access restrictions, meaning that data access to third-parties is limited. For more information on these restrictions, including how to enable this app, visit https://docs.github.com/articles/restricting-access-to-your-organization-s-data/"
	for _, path := range []string{"/user/memberships/orgs/acme", "/orgs/acme/members/alice", "/orgs/acme/teams/sre/memberships/alice"} {
		resp := apiGet(t, nil, ts.URL+path, tok)
		wantStatus(t, resp, http.StatusForbidden)
		e := decode[apiError](t, resp)
		if e.Message != msg || e.DocumentationURL != "https://docs.github.com/articles/restricting-access-to-your-organization-s-data/" {
			t.Errorf("%s: %+v", path, e)
		}
	}
	if teams := decode[[]teamFullJSON](t, apiGet(t, nil, ts.URL+"/user/teams", tok)); len(teams) != 0 {
		t.Errorf("restricted org's teams listed: %d", len(teams))
	}
	if ms := decode[[]orgMembershipJSON](t, apiGet(t, nil, ts.URL+"/user/memberships/orgs", tok)); len(ms) != 0 {
		t.Errorf("restricted org's membership listed: %+v", ms)
	}
	if orgs := decode[[]orgSimpleJSON](t, apiGet(t, nil, ts.URL+"/user/orgs", tok)); len(orgs) != 1 {
		t.Errorf("/user/orgs should still list the restricted org: %+v", orgs)
	}
	wantStatus(t, apiGet(t, nil, ts.URL+"/orgs/acme/public_members/alice", tok), http.StatusNoContent)
	fake.SetOrgRestricted("acme", false)
	wantStatus(t, apiGet(t, nil, ts.URL+"/user/memberships/orgs/acme", tok), http.StatusOK)
}

func TestOrgMemberships(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	bob, _ := fake.IssueToken("bob", "read:org") // acme member, globex pending
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"acme:active:member", "globex:pending:member"}},
		{"?state=active", []string{"acme:active:member"}},
		{"?state=pending", []string{"globex:pending:member"}},
	}
	for _, tc := range tests {
		var got []string
		for _, m := range decode[[]orgMembershipJSON](t, apiGet(t, nil, ts.URL+"/user/memberships/orgs"+tc.query, bob)) {
			got = append(got, m.Organization.Login+":"+m.State+":"+m.Role)
			if m.User.Login != "bob" || m.URL != ts.URL+"/orgs/"+m.Organization.Login+"/memberships/bob" {
				t.Errorf("membership %+v", m)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v, want %v", tc.query, got, tc.want)
		}
	}
	wantStatus(t, apiGet(t, nil, ts.URL+"/user/memberships/orgs?state=bogus", bob), http.StatusUnprocessableEntity)
	alice, _ := fake.IssueToken("alice", "read:org")
	m := decode[orgMembershipJSON](t, apiGet(t, nil, ts.URL+"/user/memberships/orgs/acme", alice))
	if m.Role != "admin" || m.State != "active" {
		t.Errorf("alice in acme: %+v", m)
	}
	wantStatus(t, apiGet(t, nil, ts.URL+"/user/memberships/orgs/globex", alice), http.StatusNotFound)
	noScope, _ := fake.IssueToken("alice")
	wantStatus(t, apiGet(t, nil, ts.URL+"/user/memberships/orgs/acme", noScope), http.StatusNotFound)
}

func TestTeamMembership(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	carol, _ := fake.IssueToken("carol", "read:org")
	dave, _ := fake.IssueToken("dave", "read:org")
	tests := []struct {
		token, path, wantRole string
		want                  int
	}{
		{carol, "/orgs/acme/teams/sre/memberships/carol", "maintainer", 200},
		{carol, "/orgs/acme/teams/dev/memberships/bob", "member", 200},
		{carol, "/orgs/acme/teams/sre/memberships/alice", "maintainer", 200}, // org owner
		{carol, "/orgs/acme/teams/dev/memberships/alice", "", 404},
		{carol, "/orgs/acme/teams/nope/memberships/alice", "", 404},
		{dave, "/orgs/acme/teams/dev/memberships/bob", "", 404},                   // not visible to outsiders
		{carol, "/orgs/globex/teams/research/memberships/dave", "", 404},          // secret team
		{dave, "/orgs/globex/teams/research/memberships/dave", "maintainer", 200}, // org owner
	}
	for _, tc := range tests {
		resp := apiGet(t, nil, ts.URL+tc.path, tc.token)
		wantStatus(t, resp, tc.want)
		if tc.want == 200 {
			m := decode[teamMembershipJSON](t, resp)
			user := tc.path[strings.LastIndex(tc.path, "/")+1:]
			if m.Role != tc.wantRole || m.State != "active" || !strings.HasSuffix(m.URL, "/memberships/"+user) {
				t.Errorf("%s: %+v", tc.path, m)
			}
		}
	}
}

func TestIndexAndAvatar(t *testing.T) {
	_, ts := newFake(t, nil, Options{})
	for path, ct := range map[string]string{"/": "text/html", "/avatars/u/1001": "image/svg+xml"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

func TestSAMLSSOEnforced(t *testing.T) {
	f := testFixture()
	for i := range f.Orgs {
		if f.Orgs[i].Login == "acme" {
			f.Orgs[i].SAMLSSOEnforced = true
		}
	}
	fake, ts := newFake(t, f, Options{})
	carol, _ := fake.IssueToken("carol", "read:org") // in acme and globex
	dave, _ := fake.IssueToken("dave", "read:org")   // not in acme
	const msg = "Resource protected by organization SAML enforcement. You must grant your Personal Access token access to this organization."
	for _, path := range []string{"/user/memberships/orgs/acme", "/orgs/acme/members/carol", "/orgs/acme/teams/sre/memberships/carol", "/api/v3/user/memberships/orgs/acme"} {
		resp := apiGet(t, nil, ts.URL+path, carol)
		wantStatus(t, resp, http.StatusForbidden)
		sso := resp.Header.Get("X-GitHub-SSO")
		if want := "required; url=" + ts.URL + "/orgs/acme/sso?authorization_request="; !strings.HasPrefix(sso, want) || len(sso) == len(want) {
			t.Errorf("%s: X-GitHub-SSO = %q, want %q…", path, sso, want)
		}
		if e := decode[apiError](t, resp); e.Message != msg || e.DocumentationURL != docsSAMLSSO {
			t.Errorf("%s: %+v", path, e)
		}
	}
	// Lists leave acme out and say so by id.
	const partial = "partial-results; organizations=501"
	for _, path := range []string{"/user/teams", "/user/memberships/orgs", "/user/orgs"} {
		resp := apiGet(t, nil, ts.URL+path, carol)
		wantStatus(t, resp, http.StatusOK)
		if got := resp.Header.Get("X-GitHub-SSO"); got != partial {
			t.Errorf("%s: X-GitHub-SSO = %q, want %q", path, got, partial)
		}
		if body := decode[[]map[string]any](t, resp); strings.Contains(fmt.Sprint(body), "acme") {
			t.Errorf("%s lists acme: %v", path, body)
		}
	}
	// Someone outside the org is not asked for SSO; they are not a member.
	resp := apiGet(t, nil, ts.URL+"/user/memberships/orgs/acme", dave)
	wantStatus(t, resp, http.StatusNotFound)
	if got := resp.Header.Get("X-GitHub-SSO"); got != "" {
		t.Errorf("non-member: X-GitHub-SSO = %q", got)
	}
	if got := apiGet(t, nil, ts.URL+"/user/teams", dave).Header.Get("X-GitHub-SSO"); got != "" {
		t.Errorf("non-member's teams: X-GitHub-SSO = %q", got)
	}

	// Once the token is authorized, the org answers as usual.
	fake.AuthorizeSSO(carol, "ACME")
	resp = apiGet(t, nil, ts.URL+"/user/memberships/orgs/acme", carol)
	wantStatus(t, resp, http.StatusOK)
	if got := resp.Header.Get("X-GitHub-SSO"); got != "" {
		t.Errorf("authorized: X-GitHub-SSO = %q", got)
	}
	// Another token of the same user is not authorized.
	carol2, _ := fake.IssueToken("carol", "read:org")
	wantStatus(t, apiGet(t, nil, ts.URL+"/user/memberships/orgs/acme", carol2), http.StatusForbidden)
	fake.SetOrgSAMLSSO("acme", false)
	wantStatus(t, apiGet(t, nil, ts.URL+"/user/memberships/orgs/acme", carol2), http.StatusOK)
}
