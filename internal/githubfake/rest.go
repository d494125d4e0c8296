package githubfake

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Documentation links GitHub puts in REST error bodies.
const (
	docsEmails         = "https://docs.github.com/rest/users/emails#list-email-addresses-for-the-authenticated-user"
	docsUserOrgs       = "https://docs.github.com/rest/orgs/orgs#list-organizations-for-the-authenticated-user"
	docsUserTeams      = "https://docs.github.com/rest/teams/teams#list-teams-for-the-authenticated-user"
	docsMemberships    = "https://docs.github.com/rest/orgs/members#list-organization-memberships-for-the-authenticated-user"
	docsMembership     = "https://docs.github.com/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user"
	docsCheckMember    = "https://docs.github.com/rest/orgs/members#check-organization-membership-for-a-user"
	docsCheckPublic    = "https://docs.github.com/rest/orgs/members#check-public-organization-membership-for-a-user"
	docsTeamMembership = "https://docs.github.com/rest/teams/members#get-team-membership-for-a-user"
	docsRestriction    = "https://docs.github.com/articles/restricting-access-to-your-organization-s-data/"
	docsSAMLSSO        = "https://docs.github.com/articles/authenticating-to-a-github-organization-with-saml-single-sign-on/"
)

// Scope sets GitHub reports in X-Accepted-OAuth-Scopes.
const (
	acceptedNone  = ""
	acceptedEmail = "user, user:email"
	acceptedOrg   = "admin:org, read:org, repo, user, write:org"
)

// readOrgScopes are the scopes that let a token read org memberships.
func readOrgScopes() []string { return []string{"read:org", "user"} }

func (s *Server) apiRoutes() []apiRoute {
	return []apiRoute{
		{"/user", acceptedNone, s.getUser},
		{"/user/emails", acceptedEmail, s.listEmails},
		{"/user/orgs", acceptedOrg, s.listOrgs},
		{"/user/teams", acceptedOrg, s.listTeams},
		{"/user/memberships/orgs", acceptedOrg, s.listOrgMemberships},
		{"/user/memberships/orgs/{org}", acceptedOrg, s.getOrgMembership},
		{"/orgs/{org}/members/{username}", acceptedOrg, s.checkMember},
		{"/orgs/{org}/public_members/{username}", acceptedNone, s.checkPublicMember},
		{"/orgs/{org}/teams/{team_slug}/memberships/{username}", acceptedOrg, s.getTeamMembership},
	}
}

func notFound(doc string) apiResult { return errResult(http.StatusNotFound, "Not Found", doc) }

// restricted is GitHub's answer for an org with OAuth App access
// restrictions that has not approved the app.
func restricted(o *orgRec) apiResult {
	return errResult(http.StatusForbidden, fmt.Sprintf("Although you appear to have the correct authorization credentials, the `%s` organization has enabled OAuth App access restrictions, meaning that data access to third-parties is limited. For more information on these restrictions, including how to enable this app, visit %s", o.Login, docsRestriction), docsRestriction)
}

// ssoRequired is GitHub's answer for an org's data when the org enforces
// SAML SSO and the token is not authorized for it. The authorization
// request id is made up: a digest of org and user, stable across calls.
func ssoRequired(c *apiCall, o *orgRec) apiResult {
	sum := sha256.Sum256([]byte(lower(o.Login) + "/" + lower(c.user.Login)))
	res := errResult(http.StatusForbidden, "Resource protected by organization SAML enforcement. You must grant your Personal Access token access to this organization.", docsSAMLSSO)
	res.sso = "required; url=" + c.webBase + "/orgs/" + url.PathEscape(o.Login) + "/sso?authorization_request=" + hex.EncodeToString(sum[:10])
	return res
}

// partialResults is the X-GitHub-SSO value of a list that leaves out orgs
// the token lacks SAML SSO authorization for, or "".
func partialResults(ids []int64) string {
	if len(ids) == 0 {
		return ""
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return "partial-results; organizations=" + strings.Join(s, ",")
}

// withheld collects the ids of orgs a list leaves out for SAML SSO.
type withheld []int64

func (w *withheld) add(o *orgRec) {
	if !slices.Contains(*w, o.ID) {
		*w = append(*w, o.ID)
	}
}

// getUser serves GET /user: private fields only with user or read:user.
func (s *Server) getUser(c *apiCall) apiResult {
	return apiResult{status: http.StatusOK, body: c.authenticatedUser(c.user, hasAnyScope(c.scopes, "read:user"))}
}

// listEmails serves GET /user/emails; without user:email GitHub hides the
// resource behind a 404.
func (s *Server) listEmails(c *apiCall) apiResult {
	if !hasAnyScope(c.scopes, "user:email") {
		return notFound(docsEmails)
	}
	page, link := paginate(c, emailsOf(c.user))
	return apiResult{status: http.StatusOK, body: page, link: link}
}

// listOrgs serves GET /user/orgs, restricted orgs included.
func (s *Server) listOrgs(c *apiCall) apiResult {
	if !hasAnyScope(c.scopes, readOrgScopes()...) {
		return errResult(http.StatusForbidden, "You need at least read:org scope or user scope to list your organizations.", docsUserOrgs)
	}
	orgs := make([]orgSimpleJSON, 0, len(c.user.orgs))
	var sso withheld
	for _, o := range c.user.orgs {
		if s.needsSSO(c, o) {
			sso.add(o)
			continue
		}
		orgs = append(orgs, c.orgSimple(o))
	}
	page, link := paginate(c, orgs)
	return apiResult{status: http.StatusOK, body: page, link: link, sso: partialResults(sso)}
}

// listTeams serves GET /user/teams; teams of restricted orgs are silently
// left out.
func (s *Server) listTeams(c *apiCall) apiResult {
	if !hasAnyScope(c.scopes, "read:org", "user", "repo") {
		return errResult(http.StatusForbidden, "You need at least read:org scope or user scope to list your teams.", docsUserTeams)
	}
	teams := make([]teamFullJSON, 0, len(c.user.teams))
	var sso withheld
	for _, t := range c.user.teams {
		switch {
		case s.isRestricted(t.org):
		case s.needsSSO(c, t.org):
			sso.add(t.org)
		default:
			teams = append(teams, c.teamFull(t))
		}
	}
	page, link := paginate(c, teams)
	return apiResult{status: http.StatusOK, body: page, link: link, sso: partialResults(sso)}
}

// listOrgMemberships serves GET /user/memberships/orgs[?state=…];
// restricted orgs are left out.
func (s *Server) listOrgMemberships(c *apiCall) apiResult {
	if !hasAnyScope(c.scopes, readOrgScopes()...) {
		return errResult(http.StatusForbidden, "You need at least read:org scope or user scope to list your organization memberships.", docsMemberships)
	}
	state := c.r.URL.Query().Get("state")
	if state != "" && state != "active" && state != "pending" {
		return errResult(http.StatusUnprocessableEntity, fmt.Sprintf("Invalid request.\n\nFor 'properties/state', %q is not one of [\"active\", \"pending\"].", state), docsMemberships)
	}
	out := []orgMembershipJSON{}
	var sso withheld
	add := func(orgs []*orgRec, st string) {
		if state != "" && state != st {
			return
		}
		for _, o := range orgs {
			switch {
			case s.isRestricted(o):
			case s.needsSSO(c, o):
				sso.add(o)
			default:
				out = append(out, c.orgMembership(o, c.user, st))
			}
		}
	}
	add(c.user.orgs, "active")
	add(c.user.pending, "pending")
	page, link := paginate(c, out)
	return apiResult{status: http.StatusOK, body: page, link: link, sso: partialResults(sso)}
}

// getOrgMembership serves GET /user/memberships/orgs/{org}.
func (s *Server) getOrgMembership(c *apiCall) apiResult {
	o := s.world().org(c.r.PathValue("org"))
	if o == nil || !hasAnyScope(c.scopes, readOrgScopes()...) {
		return notFound(docsMembership)
	}
	if s.isRestricted(o) {
		return restricted(o)
	}
	if s.needsSSO(c, o) {
		return ssoRequired(c, o)
	}
	switch {
	case o.isMember(c.user):
		return apiResult{status: http.StatusOK, body: c.orgMembership(o, c.user, "active")}
	case o.pending[lower(c.user.Login)]:
		return apiResult{status: http.StatusOK, body: c.orgMembership(o, c.user, "pending")}
	}
	return notFound(docsMembership)
}

// checkMember serves GET /orgs/{org}/members/{username}: 204 or 404 for a
// requester who is a member (with read:org), else a 302 to public_members.
func (s *Server) checkMember(c *apiCall) apiResult {
	o := s.world().org(c.r.PathValue("org"))
	if o == nil {
		return notFound(docsCheckMember)
	}
	if s.isRestricted(o) {
		return restricted(o)
	}
	if s.needsSSO(c, o) {
		return ssoRequired(c, o)
	}
	if !o.isMember(c.user) || !hasAnyScope(c.scopes, readOrgScopes()...) {
		return apiResult{
			status:   http.StatusFound,
			location: c.apiBase + "/orgs/" + o.Login + "/public_members/" + url.PathEscape(c.r.PathValue("username")),
		}
	}
	if u := s.world().user(c.r.PathValue("username")); u != nil && o.isMember(u) {
		return apiResult{status: http.StatusNoContent}
	}
	return notFound(docsCheckMember)
}

// checkPublicMember serves GET /orgs/{org}/public_members/{username}. Every
// member counts as public; public data is not subject to the restriction.
func (s *Server) checkPublicMember(c *apiCall) apiResult {
	o := s.world().org(c.r.PathValue("org"))
	u := s.world().user(c.r.PathValue("username"))
	if o == nil || u == nil || !o.isMember(u) {
		return notFound(docsCheckPublic)
	}
	return apiResult{status: http.StatusNoContent}
}

// getTeamMembership serves GET /orgs/{org}/teams/{team_slug}/memberships/{username}.
// The team must be visible to the requester; org owners read as maintainers.
func (s *Server) getTeamMembership(c *apiCall) apiResult {
	o := s.world().org(c.r.PathValue("org"))
	if o == nil || !hasAnyScope(c.scopes, readOrgScopes()...) {
		return notFound(docsTeamMembership)
	}
	if s.isRestricted(o) {
		return restricted(o)
	}
	if s.needsSSO(c, o) {
		return ssoRequired(c, o)
	}
	t := o.teamBySlug[lower(c.r.PathValue("team_slug"))]
	u := s.world().user(c.r.PathValue("username"))
	if t == nil || u == nil || !t.visibleTo(c.user) || !t.isMember(u) {
		return notFound(docsTeamMembership)
	}
	role := "member"
	if t.maintainers[lower(u.Login)] || o.isAdmin(u) {
		role = "maintainer"
	}
	return apiResult{status: http.StatusOK, body: teamMembershipJSON{
		URL: c.teamURL(t) + "/memberships/" + u.Login, Role: role, State: "active",
	}}
}
