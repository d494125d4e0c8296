package githubfake

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// The JSON shapes below follow the schemas of github/rest-api-description
// (simple-user, private-user, email, organization-simple, team-simple,
// team-full, team-organization, org-membership, team-membership); field
// order follows GitHub's responses.

const (
	fixtureCreatedAt = "2020-01-01T00:00:00Z"
	fixtureUpdatedAt = "2024-01-01T00:00:00Z"
)

type simpleUserJSON struct {
	Login             string `json:"login"`
	ID                int64  `json:"id"`
	NodeID            string `json:"node_id"`
	AvatarURL         string `json:"avatar_url"`
	GravatarID        string `json:"gravatar_id"`
	URL               string `json:"url"`
	HTMLURL           string `json:"html_url"`
	FollowersURL      string `json:"followers_url"`
	FollowingURL      string `json:"following_url"`
	GistsURL          string `json:"gists_url"`
	StarredURL        string `json:"starred_url"`
	SubscriptionsURL  string `json:"subscriptions_url"`
	OrganizationsURL  string `json:"organizations_url"`
	ReposURL          string `json:"repos_url"`
	EventsURL         string `json:"events_url"`
	ReceivedEventsURL string `json:"received_events_url"`
	Type              string `json:"type"`
	UserViewType      string `json:"user_view_type"`
	SiteAdmin         bool   `json:"site_admin"`
}

// publicUserJSON is GET /user without the user or read:user scope.
type publicUserJSON struct {
	simpleUserJSON
	Name            *string `json:"name"`
	Company         *string `json:"company"`
	Blog            string  `json:"blog"`
	Location        *string `json:"location"`
	Email           *string `json:"email"`
	Hireable        *bool   `json:"hireable"`
	Bio             *string `json:"bio"`
	TwitterUsername *string `json:"twitter_username"`
	PublicRepos     int     `json:"public_repos"`
	PublicGists     int     `json:"public_gists"`
	Followers       int     `json:"followers"`
	Following       int     `json:"following"`
	CreatedAt       string  `json:"created_at"`
	UpdatedAt       string  `json:"updated_at"`
}

// privateUserJSON is GET /user with the user or read:user scope.
type privateUserJSON struct {
	publicUserJSON
	PrivateGists            int      `json:"private_gists"`
	TotalPrivateRepos       int      `json:"total_private_repos"`
	OwnedPrivateRepos       int      `json:"owned_private_repos"`
	DiskUsage               int      `json:"disk_usage"`
	Collaborators           int      `json:"collaborators"`
	TwoFactorAuthentication bool     `json:"two_factor_authentication"`
	Plan                    planJSON `json:"plan"`
}

type planJSON struct {
	Name          string `json:"name"`
	Space         int    `json:"space"`
	Collaborators int    `json:"collaborators"`
	PrivateRepos  int    `json:"private_repos"`
}

type emailJSON struct {
	Email      string  `json:"email"`
	Primary    bool    `json:"primary"`
	Verified   bool    `json:"verified"`
	Visibility *string `json:"visibility"`
}

type orgSimpleJSON struct {
	Login            string  `json:"login"`
	ID               int64   `json:"id"`
	NodeID           string  `json:"node_id"`
	URL              string  `json:"url"`
	ReposURL         string  `json:"repos_url"`
	EventsURL        string  `json:"events_url"`
	HooksURL         string  `json:"hooks_url"`
	IssuesURL        string  `json:"issues_url"`
	MembersURL       string  `json:"members_url"`
	PublicMembersURL string  `json:"public_members_url"`
	AvatarURL        string  `json:"avatar_url"`
	Description      *string `json:"description"`
}

// teamOrgJSON is the organization embedded in team-full.
type teamOrgJSON struct {
	orgSimpleJSON
	Name                    *string `json:"name"`
	Company                 *string `json:"company"`
	Blog                    *string `json:"blog"`
	Location                *string `json:"location"`
	Email                   *string `json:"email"`
	TwitterUsername         *string `json:"twitter_username"`
	IsVerified              bool    `json:"is_verified"`
	HasOrganizationProjects bool    `json:"has_organization_projects"`
	HasRepositoryProjects   bool    `json:"has_repository_projects"`
	PublicRepos             int     `json:"public_repos"`
	PublicGists             int     `json:"public_gists"`
	Followers               int     `json:"followers"`
	Following               int     `json:"following"`
	HTMLURL                 string  `json:"html_url"`
	CreatedAt               string  `json:"created_at"`
	UpdatedAt               string  `json:"updated_at"`
	ArchivedAt              *string `json:"archived_at"`
	Type                    string  `json:"type"`
}

type teamSimpleJSON struct {
	ID                  int64   `json:"id"`
	NodeID              string  `json:"node_id"`
	URL                 string  `json:"url"`
	MembersURL          string  `json:"members_url"`
	Name                string  `json:"name"`
	Description         *string `json:"description"`
	Permission          string  `json:"permission"`
	Privacy             string  `json:"privacy"`
	NotificationSetting string  `json:"notification_setting"`
	HTMLURL             string  `json:"html_url"`
	RepositoriesURL     string  `json:"repositories_url"`
	Slug                string  `json:"slug"`
}

type teamFullJSON struct {
	ID                  int64           `json:"id"`
	NodeID              string          `json:"node_id"`
	URL                 string          `json:"url"`
	HTMLURL             string          `json:"html_url"`
	Name                string          `json:"name"`
	Slug                string          `json:"slug"`
	Description         *string         `json:"description"`
	Privacy             string          `json:"privacy"`
	NotificationSetting string          `json:"notification_setting"`
	Permission          string          `json:"permission"`
	MembersURL          string          `json:"members_url"`
	RepositoriesURL     string          `json:"repositories_url"`
	Parent              *teamSimpleJSON `json:"parent"`
	MembersCount        int             `json:"members_count"`
	ReposCount          int             `json:"repos_count"`
	CreatedAt           string          `json:"created_at"`
	UpdatedAt           string          `json:"updated_at"`
	Organization        teamOrgJSON     `json:"organization"`
}

type orgMembershipJSON struct {
	URL             string         `json:"url"`
	State           string         `json:"state"`
	Role            string         `json:"role"`
	OrganizationURL string         `json:"organization_url"`
	Organization    orgSimpleJSON  `json:"organization"`
	User            simpleUserJSON `json:"user"`
}

type teamMembershipJSON struct {
	URL   string `json:"url"`
	Role  string `json:"role"`
	State string `json:"state"`
}

// nodeID builds a legacy global node id, e.g. "MDQ6VXNlcjE=" for User 1.
func nodeID(kind string, id int64) string {
	raw := "0" + strconv.Itoa(len(kind)) + ":" + kind + strconv.FormatInt(id, 10)
	return base64.StdEncoding.EncodeToString([]byte(raw))
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (c *apiCall) avatar(id int64) string {
	return c.webBase + "/avatars/u/" + strconv.FormatInt(id, 10) + "?v=4"
}

func (c *apiCall) simpleUser(u *userRec) simpleUserJSON {
	api := c.apiBase + "/users/" + u.Login
	return simpleUserJSON{
		Login: u.Login, ID: u.ID, NodeID: nodeID("User", u.ID), AvatarURL: c.avatar(u.ID),
		URL: api, HTMLURL: c.webBase + "/" + u.Login,
		FollowersURL: api + "/followers", FollowingURL: api + "/following{/other_user}",
		GistsURL: api + "/gists{/gist_id}", StarredURL: api + "/starred{/owner}{/repo}",
		SubscriptionsURL: api + "/subscriptions", OrganizationsURL: api + "/orgs",
		ReposURL: api + "/repos", EventsURL: api + "/events{/privacy}",
		ReceivedEventsURL: api + "/received_events", Type: "User", UserViewType: "public",
		SiteAdmin: u.SiteAdmin,
	}
}

func (c *apiCall) authenticatedUser(u *userRec, private bool) any {
	pub := publicUserJSON{
		simpleUserJSON: c.simpleUser(u),
		Name:           nullable(u.Name), Email: nullable(u.PublicEmail),
		CreatedAt: fixtureCreatedAt, UpdatedAt: fixtureUpdatedAt,
	}
	if !private {
		return pub
	}
	pub.UserViewType = "private"
	return privateUserJSON{
		publicUserJSON:          pub,
		TwoFactorAuthentication: true,
		Plan:                    planJSON{Name: "free", Space: 976562499},
	}
}

func emailsOf(u *userRec) []emailJSON {
	out := make([]emailJSON, 0, len(u.Emails))
	for _, e := range u.Emails {
		vis := e.Visibility
		if vis == "" && e.Primary {
			vis = "private"
			if strings.EqualFold(e.Email, u.PublicEmail) {
				vis = "public"
			}
		}
		out = append(out, emailJSON{Email: e.Email, Primary: e.Primary, Verified: e.Verified, Visibility: nullable(vis)})
	}
	return out
}

func (c *apiCall) orgSimple(o *orgRec) orgSimpleJSON {
	api := c.apiBase + "/orgs/" + o.Login
	return orgSimpleJSON{
		Login: o.Login, ID: o.ID, NodeID: nodeID("Organization", o.ID), URL: api,
		ReposURL: api + "/repos", EventsURL: api + "/events", HooksURL: api + "/hooks",
		IssuesURL: api + "/issues", MembersURL: api + "/members{/member}",
		PublicMembersURL: api + "/public_members{/member}", AvatarURL: c.avatar(o.ID),
		Description: nullable(o.Description),
	}
}

func (c *apiCall) teamURL(t *teamRec) string {
	return c.apiBase + "/organizations/" + strconv.FormatInt(t.org.ID, 10) + "/team/" + strconv.FormatInt(t.ID, 10)
}

func (c *apiCall) teamSimple(t *teamRec) *teamSimpleJSON {
	u := c.teamURL(t)
	return &teamSimpleJSON{
		ID: t.ID, NodeID: nodeID("Team", t.ID), URL: u, MembersURL: u + "/members{/member}",
		Name: t.Name, Description: nullable(t.Description), Permission: "pull", Privacy: t.Privacy,
		NotificationSetting: "notifications_enabled", HTMLURL: c.webBase + "/orgs/" + t.org.Login + "/teams/" + t.Slug,
		RepositoriesURL: u + "/repos", Slug: t.Slug,
	}
}

func (c *apiCall) teamFull(t *teamRec) teamFullJSON {
	s := c.teamSimple(t)
	var parent *teamSimpleJSON
	if t.parent != nil {
		parent = c.teamSimple(t.parent)
	}
	return teamFullJSON{
		ID: s.ID, NodeID: s.NodeID, URL: s.URL, HTMLURL: s.HTMLURL, Name: s.Name, Slug: s.Slug,
		Description: s.Description, Privacy: s.Privacy, NotificationSetting: s.NotificationSetting,
		Permission: s.Permission, MembersURL: s.MembersURL, RepositoriesURL: s.RepositoriesURL,
		Parent: parent, MembersCount: len(t.members), CreatedAt: fixtureCreatedAt, UpdatedAt: fixtureUpdatedAt,
		Organization: teamOrgJSON{
			orgSimpleJSON: c.orgSimple(t.org), Name: nullable(t.org.Login),
			HasOrganizationProjects: true, HasRepositoryProjects: true,
			HTMLURL: c.webBase + "/" + t.org.Login, CreatedAt: fixtureCreatedAt, UpdatedAt: fixtureUpdatedAt,
			Type: "Organization",
		},
	}
}

func (c *apiCall) orgMembership(o *orgRec, u *userRec, state string) orgMembershipJSON {
	return orgMembershipJSON{
		URL: c.apiBase + "/orgs/" + o.Login + "/memberships/" + u.Login, State: state, Role: o.role(u),
		OrganizationURL: c.apiBase + "/orgs/" + o.Login, Organization: c.orgSimple(o), User: c.simpleUser(u),
	}
}
