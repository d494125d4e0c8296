package github

import (
	"slices"
	"strings"
)

// Formats of the groups claim (github.groups_format).
const (
	// GroupsFormatGitHub writes teams as "org/team-slug", GitHub's own
	// notation (CODEOWNERS). It is the default.
	GroupsFormatGitHub = "github"
	// GroupsFormatDex writes teams as "org:team-slug", as Dex's GitHub
	// connector does, for configurations migrating from Dex.
	GroupsFormatDex = "dex"
)

// Groups returns the groups claim: the login of every org the user is an
// active member of, and "org/team-slug" for each of their teams — plus
// "org/parent-slug" when GitHub names a parent team — limited to orgs in
// allowedOrgs (compared case-insensitively; an empty list allows every org),
// sorted and deduplicated.
//
// A team counts only when its org is in Orgs, so a team listing never grants
// more than the membership check did. Org names take their spelling from
// Orgs. format is GroupsFormatGitHub (also used for "" and any unknown
// value; configuration validation rejects those) or GroupsFormatDex.
func (id *Identity) Groups(allowedOrgs []string, format string) []string {
	sep := "/"
	if format == GroupsFormatDex {
		sep = ":"
	}
	allowed := make(map[string]bool, len(allowedOrgs))
	for _, o := range allowedOrgs {
		allowed[strings.ToLower(o)] = true
	}
	// orgs maps the lower-case login of each allowed, active org to its
	// spelling.
	orgs := make(map[string]string, len(id.Orgs))
	var groups []string
	for _, o := range id.Orgs {
		key := strings.ToLower(o)
		if o == "" || len(allowed) > 0 && !allowed[key] {
			continue
		}
		if _, dup := orgs[key]; !dup {
			orgs[key] = o
			groups = append(groups, o)
		}
	}
	for _, t := range id.Teams {
		org, ok := orgs[strings.ToLower(t.Org)]
		if !ok || t.Slug == "" {
			continue
		}
		groups = append(groups, org+sep+t.Slug)
		if t.Parent != "" {
			groups = append(groups, org+sep+t.Parent)
		}
	}
	slices.Sort(groups)
	return slices.Compact(groups)
}
