package githubfake

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Fixture is the world the emulator serves: registered OAuth Apps, users and
// organizations with their teams. Build one with [LoadFixture],
// [ParseFixtureFile], [DefaultFixture], [ManyTeams] or as a literal, then
// check it with [Fixture.Validate]. [New] copies it, so changing a Fixture
// after New has no effect on the server.
type Fixture struct {
	// Apps are the registered OAuth Apps.
	Apps []App `yaml:"apps"`
	// Users are the GitHub accounts that can sign in.
	Users []User `yaml:"users"`
	// Orgs are the organizations, with their members and teams.
	Orgs []Org `yaml:"orgs"`
}

// App is a registered OAuth App.
type App struct {
	// ClientID is the public client identifier.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the client secret, compared in constant time.
	ClientSecret string `yaml:"client_secret"`
	// CallbackURL is the registered authorization callback URL; redirect_uri
	// values are checked against it with GitHub's OAuth App rules.
	CallbackURL string `yaml:"callback_url"`
}

// User is a GitHub user account.
type User struct {
	// Login is the user name; unique (case-insensitively) across users and
	// orgs, GitHub's syntax: letters, digits and single inner hyphens, at
	// most 39 characters.
	Login string `yaml:"login"`
	// ID is the stable numeric account id; unique across users and orgs.
	ID int64 `yaml:"id"`
	// Name is the display name; empty means null in the API.
	Name string `yaml:"name"`
	// Emails are the addresses listed by GET /user/emails. If non-empty,
	// exactly one is primary.
	Emails []Email `yaml:"emails"`
	// PublicEmail is the email shown in GET /user; empty means null. It must
	// be one of Emails and verified.
	PublicEmail string `yaml:"public_email"`
	// SiteAdmin sets site_admin in user objects.
	SiteAdmin bool `yaml:"site_admin"`
}

// Email is one address of a user.
type Email struct {
	// Email is the address.
	Email string `yaml:"email"`
	// Primary marks the primary address.
	Primary bool `yaml:"primary"`
	// Verified marks a verified address. A user whose primary address is
	// unverified cannot obtain a token (unverified_user_email).
	Verified bool `yaml:"verified"`
	// Visibility is "public", "private" or "" (the default: "public" for the
	// primary address when it is the PublicEmail, "private" for any other
	// primary address, null for non-primary ones, as GitHub shows it).
	Visibility string `yaml:"visibility"`
}

// Org is a GitHub organization.
type Org struct {
	// Login is the organization name; unique across users and orgs.
	Login string `yaml:"login"`
	// ID is the numeric account id; unique across users and orgs.
	ID int64 `yaml:"id"`
	// Description is the org description; empty means null.
	Description string `yaml:"description"`
	// Members are the logins of active members. Admins are members too
	// whether or not they are listed here.
	Members []string `yaml:"members"`
	// Admins are the logins of owners (role "admin" in memberships).
	Admins []string `yaml:"admins"`
	// Pending are logins with a pending invitation: listed with state
	// "pending" by /user/memberships/orgs, members nowhere else.
	Pending []string `yaml:"pending"`
	// OAuthAppRestricted means the org enabled OAuth App access restrictions
	// and has not approved the app: its private data answers 403 and its
	// teams and memberships are silently left out of lists. Changeable at
	// run time with [Server.SetOrgRestricted].
	OAuthAppRestricted bool `yaml:"oauth_app_restricted"`
	// SAMLSSOEnforced means the org enforces SAML single sign-on and the
	// tokens of its members (pending ones included) are not authorized for
	// it until [Server.AuthorizeSSO]: the org's private data answers 403
	// with "X-GitHub-SSO: required; url=…" and GitHub's SAML enforcement
	// message, and lists leave the org out with "X-GitHub-SSO:
	// partial-results; organizations=ID". Changeable at run time with
	// [Server.SetOrgSAMLSSO].
	SAMLSSOEnforced bool `yaml:"saml_sso_enforced"`
	// Teams are the org's teams.
	Teams []Team `yaml:"teams"`
}

// Team is a team inside an organization.
type Team struct {
	// Slug is the URL name, unique inside the org (lowercase letters,
	// digits, '-', '_', '.').
	Slug string `yaml:"slug"`
	// Name is the display name (defaults to Slug).
	Name string `yaml:"name"`
	// ID is the numeric team id; unique across all orgs.
	ID int64 `yaml:"id"`
	// Description is the team description; empty means null.
	Description string `yaml:"description"`
	// Privacy is "closed" (the default, visible to all org members) or
	// "secret" (visible to its members and org owners).
	Privacy string `yaml:"privacy"`
	// Parent is the slug of the parent team in the same org, or empty.
	Parent string `yaml:"parent"`
	// Members are the logins of team members; each must be an org member.
	Members []string `yaml:"members"`
	// Maintainers are members with role "maintainer" (members whether or
	// not they are listed in Members). Org owners also read as maintainers.
	Maintainers []string `yaml:"maintainers"`
}

//go:embed dev-fixture.yaml
var devFixtureYAML []byte

// LoadFixture decodes one YAML fixture strictly (unknown fields are errors)
// and validates it.
func LoadFixture(r io.Reader) (*Fixture, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var f Fixture
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("githubfake: fixture: empty document")
		}
		return nil, fmt.Errorf("githubfake: fixture: %w", err)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// ParseFixtureFile reads and validates the YAML fixture at path.
func ParseFixtureFile(path string) (*Fixture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("githubfake: fixture: %w", err)
	}
	f, err := LoadFixture(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// DefaultFixture returns a fresh copy of the embedded fixture used by
// `ghbroker dev`: app ghbroker-dev / ghbroker-dev-secret with callback
// http://localhost:8080/callback, five users (alice, bob, carol, dave in
// orgs acme and globex; erin in no org) and teams sre, sre-oncall, dev,
// admins, grafana-admins (acme) and platform, research (globex).
func DefaultFixture() *Fixture {
	f, err := LoadFixture(bytes.NewReader(devFixtureYAML))
	if err != nil {
		panic("githubfake: embedded dev fixture is invalid: " + err.Error())
	}
	return f
}

// ManyTeams returns a valid fixture in which login (id 1001) is a member of
// org (id 501) and of its n teams, slugs team-001, team-002, … (ids
// 100001…), for pagination tests. It also has the dev app (ghbroker-dev,
// ghbroker-dev-secret, http://localhost:8080/callback) and a user
// "outsider" (id 1002) in no org. Callers may edit the result before [New].
func ManyTeams(org string, n int, login string) *Fixture {
	f := &Fixture{
		Apps: []App{{ClientID: "ghbroker-dev", ClientSecret: "ghbroker-dev-secret", CallbackURL: "http://localhost:8080/callback"}},
		Users: []User{
			{Login: login, ID: 1001, Name: login, Emails: []Email{{Email: login + "@example.com", Primary: true, Verified: true}}},
			{Login: "outsider", ID: 1002, Name: "Outsider", Emails: []Email{{Email: "outsider@example.com", Primary: true, Verified: true}}},
		},
		Orgs: []Org{{Login: org, ID: 501, Members: []string{login}}},
	}
	for i := 1; i <= n; i++ {
		slug := fmt.Sprintf("team-%03d", i)
		f.Orgs[0].Teams = append(f.Orgs[0].Teams, Team{
			Slug: slug, Name: fmt.Sprintf("Team %03d", i), ID: int64(100000 + i), Members: []string{login},
		})
	}
	return f
}

// Validate reports every problem in f (unknown logins, duplicate ids or
// logins, bad callback URLs, team cycles, …) as one error, or nil.
func (f *Fixture) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	clients := map[string]bool{}
	for i, a := range f.Apps {
		switch {
		case a.ClientID == "":
			bad("apps[%d]: client_id is empty", i)
		case clients[a.ClientID]:
			bad("apps[%d]: duplicate client_id %q", i, a.ClientID)
		}
		clients[a.ClientID] = true
		if a.ClientSecret == "" {
			bad("apps[%d] (%s): client_secret is empty", i, a.ClientID)
		}
		if err := checkCallback(a.CallbackURL); err != nil {
			bad("apps[%d] (%s): callback_url: %v", i, a.ClientID, err)
		}
	}

	accounts := map[string]string{} // lowercased login → where
	ids := map[int64]string{}
	account := func(where, login string, id int64) {
		if !validLogin(login) {
			bad("%s: invalid login %q", where, login)
		} else if prev, dup := accounts[strings.ToLower(login)]; dup {
			bad("%s: login %q already used by %s", where, login, prev)
		} else {
			accounts[strings.ToLower(login)] = where
		}
		if id <= 0 {
			bad("%s (%s): id must be positive", where, login)
		} else if prev, dup := ids[id]; dup {
			bad("%s (%s): id %d already used by %s", where, login, id, prev)
		} else {
			ids[id] = where
		}
	}
	users := map[string]bool{}
	for i, u := range f.Users {
		where := fmt.Sprintf("users[%d]", i)
		account(where, u.Login, u.ID)
		users[strings.ToLower(u.Login)] = true
		f.validateEmails(where+" ("+u.Login+")", u, bad)
	}
	for i, o := range f.Orgs {
		account(fmt.Sprintf("orgs[%d]", i), o.Login, o.ID)
	}
	teamIDs := map[int64]string{}
	for _, o := range f.Orgs {
		validateOrg(o, users, teamIDs, bad)
	}
	if len(errs) > 0 {
		return fmt.Errorf("githubfake: invalid fixture: %w", errors.Join(errs...))
	}
	return nil
}

func (f *Fixture) validateEmails(where string, u User, bad func(string, ...any)) {
	primaries := 0
	seen := map[string]bool{}
	publicOK := u.PublicEmail == ""
	for _, e := range u.Emails {
		if !strings.Contains(e.Email, "@") {
			bad("%s: invalid email %q", where, e.Email)
		}
		if seen[strings.ToLower(e.Email)] {
			bad("%s: duplicate email %q", where, e.Email)
		}
		seen[strings.ToLower(e.Email)] = true
		if e.Primary {
			primaries++
		}
		if e.Visibility != "" && e.Visibility != "public" && e.Visibility != "private" {
			bad("%s: email %q: visibility must be public, private or empty", where, e.Email)
		}
		if strings.EqualFold(e.Email, u.PublicEmail) && e.Verified {
			publicOK = true
		}
	}
	if len(u.Emails) > 0 && primaries != 1 {
		bad("%s: %d primary emails, want exactly 1", where, primaries)
	}
	if !publicOK {
		bad("%s: public_email %q is not one of the user's verified emails", where, u.PublicEmail)
	}
}

func validateOrg(o Org, users map[string]bool, teamIDs map[int64]string, bad func(string, ...any)) {
	where := "org " + o.Login
	members := map[string]bool{}
	list := func(field string, logins []string, into map[string]bool) {
		seen := map[string]bool{}
		for _, l := range logins {
			k := strings.ToLower(l)
			switch {
			case !users[k]:
				bad("%s: %s: unknown user %q", where, field, l)
			case seen[k]:
				bad("%s: %s: %q listed twice", where, field, l)
			}
			seen[k] = true
			if into != nil {
				into[k] = true
			}
		}
	}
	list("members", o.Members, members)
	list("admins", o.Admins, members)
	list("pending", o.Pending, nil)
	for _, p := range o.Pending {
		if members[strings.ToLower(p)] {
			bad("%s: pending: %q is already a member", where, p)
		}
	}
	slugs := map[string]*Team{}
	for i := range o.Teams {
		t := &o.Teams[i]
		tw := fmt.Sprintf("%s: teams[%d] (%s)", where, i, t.Slug)
		if !validSlug(t.Slug) {
			bad("%s: invalid slug", tw)
		} else if slugs[t.Slug] != nil {
			bad("%s: duplicate slug", tw)
		}
		slugs[t.Slug] = t
		if t.ID <= 0 {
			bad("%s: id must be positive", tw)
		} else if prev, dup := teamIDs[t.ID]; dup {
			bad("%s: team id %d already used by %s", tw, t.ID, prev)
		} else {
			teamIDs[t.ID] = tw
		}
		if t.Privacy != "" && t.Privacy != "closed" && t.Privacy != "secret" {
			bad("%s: privacy must be closed, secret or empty", tw)
		}
		for _, l := range slices.Concat(t.Members, t.Maintainers) {
			if !members[strings.ToLower(l)] {
				bad("%s: %q is not a member of the org", tw, l)
			}
		}
	}
	for i := range o.Teams {
		t := &o.Teams[i]
		if t.Parent == "" {
			continue
		}
		if slugs[t.Parent] == nil {
			bad("%s: team %s: unknown parent %q", where, t.Slug, t.Parent)
			continue
		}
		p := t
		for steps := 0; p != nil && p.Parent != ""; steps++ {
			if steps > len(o.Teams) {
				bad("%s: team %s: parent chain has a cycle", where, t.Slug)
				break
			}
			p = slugs[p.Parent]
		}
	}
}

func checkCallback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must not carry a fragment or user info", raw)
	}
	return nil
}

// validLogin applies GitHub's username rule: letters, digits and single
// hyphens, not at either end, 1 to 39 characters.
func validLogin(s string) bool {
	if s == "" || len(s) > 39 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for _, c := range s {
		if !isAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

func validSlug(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// clone returns a deep copy of f.
func (f *Fixture) clone() *Fixture {
	c := &Fixture{Apps: slices.Clone(f.Apps), Users: slices.Clone(f.Users), Orgs: slices.Clone(f.Orgs)}
	for i := range c.Users {
		c.Users[i].Emails = slices.Clone(c.Users[i].Emails)
	}
	for i := range c.Orgs {
		o := &c.Orgs[i]
		o.Members, o.Admins, o.Pending = slices.Clone(o.Members), slices.Clone(o.Admins), slices.Clone(o.Pending)
		o.Teams = slices.Clone(o.Teams)
		for j := range o.Teams {
			t := &o.Teams[j]
			t.Members, t.Maintainers = slices.Clone(t.Members), slices.Clone(t.Maintainers)
		}
	}
	return c
}

// RemoveMember takes login out of org and all of its teams, as an org
// owner removing someone on GitHub would. Use it with SetFixture.
func (f *Fixture) RemoveMember(org, login string) {
	drop := func(s []string) []string {
		return slices.DeleteFunc(s, func(m string) bool { return strings.EqualFold(m, login) })
	}
	for i := range f.Orgs {
		o := &f.Orgs[i]
		if !strings.EqualFold(o.Login, org) {
			continue
		}
		o.Members, o.Admins, o.Pending = drop(o.Members), drop(o.Admins), drop(o.Pending)
		for j := range o.Teams {
			o.Teams[j].Members, o.Teams[j].Maintainers = drop(o.Teams[j].Members), drop(o.Teams[j].Maintainers)
		}
	}
}
