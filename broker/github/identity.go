package github

import (
	"cmp"
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Identity is what GitHub says about a signed-in user.
type Identity struct {
	// ID is the numeric user id, stable across renames (the "sub" claim).
	ID int64
	// Login is the user's login.
	Login string
	// Name is the display name; often empty.
	Name string
	// Email is the primary email address (see EmailVerified).
	Email string
	// EmailVerified reports whether GitHub lists Email as verified.
	EmailVerified bool
	// AvatarURL is the avatar image URL.
	AvatarURL string
	// Orgs are the organizations where the user's membership is active,
	// spelled as GitHub spells them, sorted case-insensitively.
	Orgs []string
	// Teams are every team the user belongs to, in all organizations,
	// sorted by organization and slug.
	Teams []Team
	// RestrictedOrgs are allowed organizations that refused this OAuth App
	// because of OAuth App access restrictions: the user may be a member,
	// but GitHub will not say until an owner approves the app (see
	// [Client.OrgApprovalURL]). Spelled as in the allowed list, sorted.
	RestrictedOrgs []string
	// SSORequired are organizations that enforce SAML single sign-on and
	// refused to show this token the user's membership (or their part of
	// a list): the user may be a member, but must authorize the token for
	// the organization first, at SSOOrg.URL when GitHub gave a safe one.
	// Sorted by Org, one entry per organization. Such an organization is
	// in neither Orgs nor RestrictedOrgs, and its teams are missing.
	SSORequired []SSOOrg
}

// Team is one team membership.
type Team struct {
	// Org is the organization login, as GitHub spells it.
	Org string
	// Slug is the team slug.
	Slug string
	// Parent is the parent team's slug when GitHub reports one, else "".
	Parent string
}

// Wire shapes of REST API version 2022-11-28; only the fields the broker
// reads.
type (
	apiUser struct {
		ID        int64  `json:"id"`
		Login     string `json:"login"`
		Name      string `json:"name"`
		Email     string `json:"email"`
		AvatarURL string `json:"avatar_url"`
	}
	apiEmail struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	apiOrg struct {
		Login string `json:"login"`
	}
	apiTeam struct {
		Slug         string `json:"slug"`
		Organization apiOrg `json:"organization"`
		Parent       *struct {
			Slug string `json:"slug"`
		} `json:"parent"`
	}
	apiMembership struct {
		State        string `json:"state"`
		Organization apiOrg `json:"organization"`
	}
)

// perPage is GitHub's maximum page size.
const perPage = "100"

// fetchConcurrency bounds how many requests one FetchIdentity has in flight.
const fetchConcurrency = 8

// FetchIdentity reads the user behind token: profile, email, active
// organization memberships and teams, fetched concurrently; the first
// failure cancels the rest and is returned (typed: see [IsTemporary],
// [ErrBadCredentials]).
//
// GitHub's membership list can lag behind reality, and it omits
// organizations that restrict this OAuth App. So every org in allowedOrgs
// (compared case-insensitively) that the list does not show as active is
// asked about directly: active → added to Orgs; not a member → skipped;
// refused under OAuth App access restrictions → added to RestrictedOrgs;
// refused because the token lacks SAML SSO authorization → added to
// SSORequired. A list that GitHub refuses for SAML SSO counts as empty
// (its organization, when the SSO URL names it, goes to SSORequired), so
// the sign-in goes on with what the other reads show.
// Teams of a restricting organization are missing from Teams; GitHub gives
// no signal for that beyond the restriction itself.
func (c *Client) FetchIdentity(ctx context.Context, token string, allowedOrgs []string) (*Identity, error) {
	g, gctx := newGroup(ctx, fetchConcurrency)
	var (
		user           apiUser
		emails         []apiEmail
		emailsMissing  bool
		teams          []apiTeam
		memberships    []apiMembership
		mu             sync.Mutex // guards extraOrgs, restrictedOrgs and ssoOrgs
		extraOrgs      []string
		restrictedOrgs []string
		ssoOrgs        []SSOOrg
	)
	// listSSO turns a list refused for SAML SSO into an empty list.
	listSSO := func(err error) error {
		var ae *APIError
		if !errors.As(err, &ae) || !errors.Is(err, ErrSSORequired) {
			return err
		}
		u := c.trustedSSOURL(ae.ssoURL)
		org := c.ssoOrgFromURL(u)
		c.log.InfoContext(ctx, "github: list refused for SAML SSO", "path", ae.Path, "org", org)
		if org != "" {
			mu.Lock()
			ssoOrgs = append(ssoOrgs, SSOOrg{Org: org, URL: u})
			mu.Unlock()
		}
		return nil
	}
	g.Go(func() error {
		return c.getJSON(gctx, token, c.apiURL("/user", nil), &user)
	})
	g.Go(func() error {
		var err error
		emails, err = paginate[apiEmail](gctx, c, token, c.apiURL("/user/emails", url.Values{"per_page": {perPage}}))
		var ae *APIError
		if errors.As(err, &ae) && (ae.Status == 404 || ae.Status == 403) {
			// No user:email scope (OAuth App: 404; GitHub App token
			// without the email permission: 403). Fall back to the
			// public email of /user.
			c.log.DebugContext(ctx, "github: emails not readable, using public email", "status", ae.Status)
			emailsMissing = true
			return nil
		}
		return err
	})
	g.Go(func() error {
		var err error
		teams, err = paginate[apiTeam](gctx, c, token, c.apiURL("/user/teams", url.Values{"per_page": {perPage}}))
		return listSSO(err)
	})
	g.Go(func() error {
		var err error
		memberships, err = paginate[apiMembership](gctx, c, token,
			c.apiURL("/user/memberships/orgs", url.Values{"state": {"active"}, "per_page": {perPage}}))
		if err := listSSO(err); err != nil {
			return err
		}
		for _, org := range missingOrgs(allowedOrgs, memberships) {
			g.Go(func() error {
				login, st, ssoURL, err := c.orgMembership(gctx, token, org)
				mu.Lock()
				defer mu.Unlock()
				switch st {
				case orgActive:
					extraOrgs = append(extraOrgs, login)
				case orgRestricted:
					restrictedOrgs = append(restrictedOrgs, org)
				case orgSSORequired:
					ssoOrgs = append(ssoOrgs, SSOOrg{Org: org, URL: ssoURL})
				}
				return err
			})
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if user.ID == 0 || user.Login == "" {
		return nil, malformed(200, c.api.Path+"/user", "user has no id or login")
	}

	id := &Identity{
		ID:        user.ID,
		Login:     user.Login,
		Name:      user.Name,
		AvatarURL: user.AvatarURL,
	}
	id.Email, id.EmailVerified = pickEmail(user.Email, emails, emailsMissing)
	for _, m := range memberships {
		if m.State == "active" && m.Organization.Login != "" {
			id.Orgs = append(id.Orgs, m.Organization.Login)
		}
	}
	id.Orgs = sortFoldUnique(append(id.Orgs, extraOrgs...))
	id.RestrictedOrgs = sortFoldUnique(restrictedOrgs)
	id.SSORequired = ssoUnique(ssoOrgs, id.Orgs)
	for _, t := range teams {
		if t.Slug == "" || t.Organization.Login == "" {
			continue
		}
		team := Team{Org: t.Organization.Login, Slug: t.Slug}
		if t.Parent != nil {
			team.Parent = t.Parent.Slug
		}
		id.Teams = append(id.Teams, team)
	}
	slices.SortFunc(id.Teams, func(a, b Team) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Org), strings.ToLower(b.Org)), cmp.Compare(a.Slug, b.Slug))
	})
	id.Teams = slices.CompactFunc(id.Teams, func(a, b Team) bool {
		return strings.EqualFold(a.Org, b.Org) && a.Slug == b.Slug
	})
	return id, nil
}

// pickEmail chooses the email claim: the primary address from /user/emails
// with its verified flag. Without a readable email list (or without a
// primary in it), the public email of /user is used and reported
// unverified: GitHub does not say whether it is.
func pickEmail(public string, emails []apiEmail, missing bool) (email string, verified bool) {
	if !missing {
		for _, e := range emails {
			if e.Primary && e.Email != "" {
				return e.Email, e.Verified
			}
		}
	}
	return public, false
}

// missingOrgs returns the allowed orgs (first spelling, deduplicated
// case-insensitively) that memberships does not show as active.
func missingOrgs(allowed []string, memberships []apiMembership) []string {
	active := make(map[string]bool, len(memberships))
	for _, m := range memberships {
		if m.State == "active" {
			active[strings.ToLower(m.Organization.Login)] = true
		}
	}
	var missing []string
	for _, org := range allowed {
		key := strings.ToLower(org)
		if org == "" || active[key] {
			continue
		}
		active[key] = true // ask once per org
		missing = append(missing, org)
	}
	return missing
}

// orgStatus is the outcome of a direct membership check.
type orgStatus int

const (
	orgNotMember orgStatus = iota
	orgActive
	orgRestricted
	orgSSORequired
)

// orgMembership asks GitHub about the user's membership of one org
// (GET /user/memberships/orgs/{org}). It returns the org's login as GitHub
// spells it when the membership is active, and for orgSSORequired the SSO
// URL when it is safe to show (else "").
func (c *Client) orgMembership(ctx context.Context, token, org string) (string, orgStatus, string, error) {
	var m apiMembership
	err := c.getJSON(ctx, token, c.apiURL("/user/memberships/orgs/"+url.PathEscape(org), nil), &m)
	var ae *APIError
	switch {
	case err == nil:
		if m.State != "active" {
			return "", orgNotMember, "", nil // pending invitation
		}
		return cmp.Or(m.Organization.Login, org), orgActive, "", nil
	case errors.Is(err, ErrNotFound):
		return "", orgNotMember, "", nil
	case errors.As(err, &ae) && errors.Is(err, ErrSSORequired):
		u := c.trustedSSOURL(ae.ssoURL)
		if u == "" && ae.ssoURL != "" {
			c.log.WarnContext(ctx, "github: SAML SSO URL ignored: not on the GitHub web host", "org", org)
		}
		c.log.InfoContext(ctx, "github: organization requires SAML SSO authorization", "org", org)
		return "", orgSSORequired, u, nil
	case errors.As(err, &ae) && isOAuthAppRestricted(ae.Status, ae.Message, ae.DocumentationURL):
		c.log.InfoContext(ctx, "github: organization restricts this OAuth App", "org", org)
		return "", orgRestricted, "", nil
	case errors.As(err, &ae) && ae.Status == 403 && ae.Err == nil:
		// Another refusal. Membership cannot be shown, so it is not
		// granted; the sign-in goes on for the other orgs.
		c.log.WarnContext(ctx, "github: organization membership check refused", "org", org,
			"message", ae.Message)
		return "", orgNotMember, "", nil
	}
	return "", orgNotMember, "", err
}

// sortFoldUnique sorts s case-insensitively and drops case-insensitive
// duplicates, keeping the first spelling.
func sortFoldUnique(s []string) []string {
	slices.SortStableFunc(s, func(a, b string) int {
		return cmp.Compare(strings.ToLower(a), strings.ToLower(b))
	})
	return slices.CompactFunc(s, strings.EqualFold)
}

// ssoUnique sorts SSO orgs by login case-insensitively and keeps one entry
// per org (the first with a URL), leaving out orgs the user is shown to be
// an active member of after all.
func ssoUnique(s []SSOOrg, active []string) []SSOOrg {
	s = slices.DeleteFunc(s, func(o SSOOrg) bool {
		return slices.ContainsFunc(active, func(a string) bool { return strings.EqualFold(a, o.Org) })
	})
	slices.SortStableFunc(s, func(a, b SSOOrg) int {
		withURL := func(o SSOOrg) int { return min(len(o.URL), 1) }
		return cmp.Or(cmp.Compare(strings.ToLower(a.Org), strings.ToLower(b.Org)), cmp.Compare(withURL(b), withURL(a)))
	})
	return slices.CompactFunc(s, func(a, b SSOOrg) bool { return strings.EqualFold(a.Org, b.Org) })
}
