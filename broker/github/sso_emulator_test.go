package github_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/internal/githubfake"
)

// TestFetchIdentitySSOAgainstEmulator: an allowed org that enforces SAML
// SSO, read with a token not authorized for it, lands in SSORequired with
// the emulator's own SSO URL; once authorized, it is an ordinary org.
func TestFetchIdentitySSOAgainstEmulator(t *testing.T) {
	f := githubfake.DefaultFixture()
	for i := range f.Orgs {
		if f.Orgs[i].Login == "globex" {
			f.Orgs[i].SAMLSSOEnforced = true
		}
	}
	fake := githubfake.New(f, githubfake.Options{})
	ts := httptest.NewServer(fake)
	defer ts.Close()
	c, err := github.New(github.Config{
		ClientID: "x", ClientSecret: "y", WebURL: ts.URL, APIURL: ts.URL + "/api/v3",
		RedirectURL: "http://localhost/callback", HTTPClient: ts.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := fake.IssueToken("carol", "read:org", "user:email")
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.FetchIdentity(t.Context(), tok, []string{"acme", "globex"})
	if err != nil {
		t.Fatal(err)
	}
	if len(id.SSORequired) != 1 || id.SSORequired[0].Org != "globex" ||
		!strings.HasPrefix(id.SSORequired[0].URL, ts.URL+"/orgs/globex/sso?authorization_request=") {
		t.Fatalf("SSORequired = %+v, want globex with the emulator's SSO URL", id.SSORequired)
	}
	if strings.Contains(strings.Join(id.Orgs, ","), "globex") {
		t.Errorf("Orgs = %v: globex's membership was not shown", id.Orgs)
	}
	for _, tm := range id.Teams {
		if tm.Org == "globex" {
			t.Errorf("team %+v of the SSO org listed", tm)
		}
	}

	fake.AuthorizeSSO(tok, "globex")
	id, err = c.FetchIdentity(t.Context(), tok, []string{"acme", "globex"})
	if err != nil {
		t.Fatal(err)
	}
	if len(id.SSORequired) != 0 || !strings.Contains(strings.Join(id.Orgs, ","), "globex") {
		t.Errorf("after AuthorizeSSO: Orgs %v, SSORequired %+v", id.Orgs, id.SSORequired)
	}
}
