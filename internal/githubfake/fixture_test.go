package githubfake

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validYAML = `
apps:
  - client_id: ghbroker-dev
    client_secret: dev-secret
    callback_url: http://localhost:8080/callback
users:
  - login: alice
    id: 1001
    name: Alice Example
    emails: [{email: alice@example.com, primary: true, verified: true}]
    public_email: ""
  - login: bob
    id: 1002
orgs:
  - login: acme
    id: 501
    members: [alice, bob]
    admins: [alice]
    oauth_app_restricted: false
    saml_sso_enforced: false
    teams:
      - {slug: sre, name: SRE, id: 9001, members: [alice]}
      - {slug: sre-oncall, name: SRE On-call, id: 9002, parent: sre, members: [alice]}
`

func TestLoadFixture(t *testing.T) {
	f, err := LoadFixture(strings.NewReader(validYAML))
	if err != nil {
		t.Fatalf("valid fixture: %v", err)
	}
	if len(f.Users) != 2 || f.Orgs[0].Teams[1].Parent != "sre" || f.Apps[0].ClientSecret != "dev-secret" {
		t.Errorf("decoded %+v", f)
	}
}

func TestLoadFixtureErrors(t *testing.T) {
	tests := []struct {
		name, from, to, wantErr string
	}{
		{"unknown field", "    oauth_app_restricted: false", "    oauth_restricted: false", "field oauth_restricted not found"},
		{"unknown member", "members: [alice, bob]", "members: [alice, zed]", `unknown user "zed"`},
		{"unknown admin", "admins: [alice]", "admins: [mallory]", `admins: unknown user "mallory"`},
		{"duplicate user id", "id: 1002", "id: 1001", "id 1001 already used"},
		{"user id equals org id", "id: 1002", "id: 501", "id 501 already used"},
		{"duplicate login, other case", "login: bob", "login: ALICE", `login "ALICE" already used`},
		{"invalid login", "login: bob", "login: -bob", `invalid login "-bob"`},
		{"unknown parent", "parent: sre", "parent: ops", `unknown parent "ops"`},
		{"duplicate team id", "id: 9002", "id: 9001", "team id 9001 already used"},
		{"team member outside org", "members: [alice]}\n      - {slug: sre-oncall", "members: [alice, carol]}\n      - {slug: sre-oncall", `"carol" is not a member`},
		{"bad callback", "callback_url: http://localhost:8080/callback", "callback_url: /callback", "callback_url"},
		{"missing secret", "client_secret: dev-secret", "client_secret: ''", "client_secret is empty"},
		{"public email not owned", `public_email: ""`, "public_email: alice@elsewhere.example", "public_email"},
		{"no primary", "primary: true", "primary: false", "0 primary emails"},
		{"bad yaml type", "id: 1001", "id: one", "cannot unmarshal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(validYAML, tc.from) {
				t.Fatalf("test bug: %q not in fixture", tc.from)
			}
			_, err := LoadFixture(strings.NewReader(strings.Replace(validYAML, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
	if _, err := LoadFixture(strings.NewReader("")); err == nil {
		t.Error("empty document accepted")
	}
}

func TestTeamCycleRejected(t *testing.T) {
	f := ManyTeams("acme", 3, "alice")
	f.Orgs[0].Teams[0].Parent = "team-002"
	f.Orgs[0].Teams[1].Parent = "team-003"
	f.Orgs[0].Teams[2].Parent = "team-001"
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("err = %v, want a cycle error", err)
	}
}

func TestDefaultFixture(t *testing.T) {
	f := DefaultFixture()
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if a := f.Apps[0]; a.ClientID != "ghbroker-dev" || a.ClientSecret != "ghbroker-dev-secret" || a.CallbackURL != "http://localhost:8080/callback" {
		t.Errorf("dev app = %+v", a)
	}
	w := newWorld(f)
	if len(w.users) < 4 || len(w.users) > 5 || len(w.orgs) != 2 {
		t.Errorf("%d users, %d orgs", len(w.users), len(w.orgs))
	}
	loners := 0
	for _, u := range w.users {
		if len(u.orgs) == 0 {
			loners++
		}
	}
	if loners != 1 {
		t.Errorf("%d users in no org, want 1", loners)
	}
	for _, slug := range []string{"sre", "dev", "admins", "grafana-admins"} {
		if w.org("acme").teamBySlug[slug] == nil {
			t.Errorf("acme lacks team %s", slug)
		}
	}
	f.Users[0].Login = "changed"
	if DefaultFixture().Users[0].Login == "changed" {
		t.Error("DefaultFixture returns shared data")
	}
}

func TestManyTeams(t *testing.T) {
	f := ManyTeams("bigcorp", 300, "tess")
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if u := newWorld(f).user("tess"); len(u.teams) != 300 {
		t.Errorf("tess in %d teams, want 300", len(u.teams))
	}
}

func TestParseFixtureFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte(validYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("users: [{login: x, id: 1, shoe_size: 9}]"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFixtureFile(good); err != nil {
		t.Errorf("good: %v", err)
	}
	if _, err := ParseFixtureFile(bad); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Errorf("bad: err = %v, want it to name the file", err)
	}
	if _, err := ParseFixtureFile(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestNewCopiesFixture(t *testing.T) {
	f := testFixture()
	fake, ts := newFake(t, f, Options{})
	f.Orgs[0].Members = nil
	f.Orgs[0].Admins = nil
	f.Users[0].Name = "Mallory"
	tok, _ := fake.IssueToken("alice", "read:org")
	wantStatus(t, apiGet(t, nil, ts.URL+"/orgs/acme/members/bob", tok), 204)
	if u := decode[map[string]any](t, apiGet(t, nil, ts.URL+"/user", tok)); u["name"] != "Alice Example" {
		t.Errorf("name = %v", u["name"])
	}
}

func TestNewPanicsOnInvalidFixture(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New accepted an invalid fixture")
		}
	}()
	New(&Fixture{Users: []User{{Login: "a", ID: 1}, {Login: "a", ID: 2}}}, Options{})
}

func FuzzLoadFixture(f *testing.F) {
	f.Add(validYAML)
	f.Add("orgs: [{login: a, id: 1, teams: [{slug: x, id: 1, parent: x}]}]")
	f.Fuzz(func(t *testing.T, doc string) {
		fx, err := LoadFixture(strings.NewReader(doc))
		if err != nil {
			return
		}
		New(fx, Options{}) // a fixture that loads must never make New panic
	})
}

func TestSetFixtureChangesMemberships(t *testing.T) {
	f := DefaultFixture()
	s := New(f, Options{})
	tok, err := s.IssueToken("alice", "read:org", "user:email")
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		req := httptest.NewRequest("GET", "/user/memberships/orgs?state=active", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		var ms []map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &ms); err != nil {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		return len(ms)
	}
	before := count()
	g := DefaultFixture()
	for _, o := range g.Orgs {
		g.RemoveMember(o.Login, "alice")
	}
	s.SetFixture(g)
	if after := count(); before == 0 || after != 0 {
		t.Fatalf("memberships before %d, after removal %d", before, after)
	}
}
