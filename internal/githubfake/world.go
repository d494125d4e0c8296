package githubfake

import (
	"slices"
	"strings"
)

// world is the fixture indexed for lookups. It is built once by New and
// never changes afterwards (the mutable org restriction lives in Server).
type world struct {
	apps        map[string]*App
	firstApp    string // client_id of the fixture's first app, or ""
	users       []*userRec
	userByLogin map[string]*userRec // lowercased login
	orgs        []*orgRec
	orgByLogin  map[string]*orgRec // lowercased login
}

type userRec struct {
	User
	orgs    []*orgRec  // active memberships, fixture order
	pending []*orgRec  // pending invitations
	teams   []*teamRec // direct team memberships, fixture order
}

type orgRec struct {
	Org
	members    map[string]bool // lowercased logins, admins included
	admins     map[string]bool
	pending    map[string]bool
	teams      []*teamRec
	teamBySlug map[string]*teamRec
}

type teamRec struct {
	Team
	org         *orgRec
	parent      *teamRec
	members     map[string]bool // maintainers included
	maintainers map[string]bool
}

// newWorld indexes a validated fixture.
func newWorld(f *Fixture) *world {
	w := &world{
		apps:        map[string]*App{},
		userByLogin: map[string]*userRec{},
		orgByLogin:  map[string]*orgRec{},
	}
	for i := range f.Apps {
		w.apps[f.Apps[i].ClientID] = &f.Apps[i]
	}
	if len(f.Apps) > 0 {
		w.firstApp = f.Apps[0].ClientID
	}
	for _, u := range f.Users {
		rec := &userRec{User: u}
		w.users = append(w.users, rec)
		w.userByLogin[strings.ToLower(u.Login)] = rec
	}
	for _, o := range f.Orgs {
		rec := &orgRec{
			Org:        o,
			members:    set(slices.Concat(o.Members, o.Admins)),
			admins:     set(o.Admins),
			pending:    set(o.Pending),
			teamBySlug: map[string]*teamRec{},
		}
		for _, t := range o.Teams {
			if t.Name == "" {
				t.Name = t.Slug
			}
			if t.Privacy == "" {
				t.Privacy = "closed"
			}
			tr := &teamRec{
				Team:        t,
				org:         rec,
				members:     set(slices.Concat(t.Members, t.Maintainers)),
				maintainers: set(t.Maintainers),
			}
			rec.teams = append(rec.teams, tr)
			rec.teamBySlug[strings.ToLower(t.Slug)] = tr
		}
		for _, t := range rec.teams {
			if t.Team.Parent != "" {
				t.parent = rec.teamBySlug[strings.ToLower(t.Team.Parent)]
			}
		}
		w.orgs = append(w.orgs, rec)
		w.orgByLogin[strings.ToLower(o.Login)] = rec
	}
	for _, u := range w.users {
		k := strings.ToLower(u.Login)
		for _, o := range w.orgs {
			if o.members[k] {
				u.orgs = append(u.orgs, o)
			}
			if o.pending[k] {
				u.pending = append(u.pending, o)
			}
			for _, t := range o.teams {
				if t.members[k] {
					u.teams = append(u.teams, t)
				}
			}
		}
	}
	return w
}

func lower(s string) string { return strings.ToLower(s) }

func set(logins []string) map[string]bool {
	m := make(map[string]bool, len(logins))
	for _, l := range logins {
		m[strings.ToLower(l)] = true
	}
	return m
}

func (w *world) user(login string) *userRec { return w.userByLogin[strings.ToLower(login)] }
func (w *world) org(login string) *orgRec   { return w.orgByLogin[strings.ToLower(login)] }

func (o *orgRec) isMember(u *userRec) bool { return o.members[strings.ToLower(u.Login)] }
func (o *orgRec) isAdmin(u *userRec) bool  { return o.admins[strings.ToLower(u.Login)] }

func (o *orgRec) role(u *userRec) string {
	if o.isAdmin(u) {
		return "admin"
	}
	return "member"
}

func (t *teamRec) isMember(u *userRec) bool { return t.members[strings.ToLower(u.Login)] }

// visibleTo reports whether viewer can see t: closed teams are visible to
// every org member, secret teams to their members and org owners.
func (t *teamRec) visibleTo(viewer *userRec) bool {
	if !t.org.isMember(viewer) {
		return false
	}
	return t.Privacy != "secret" || t.isMember(viewer) || t.org.isAdmin(viewer)
}

// primaryEmail returns the user's primary email, or nil.
func (u *userRec) primaryEmail() *Email {
	for i := range u.Emails {
		if u.Emails[i].Primary {
			return &u.Emails[i]
		}
	}
	return nil
}
