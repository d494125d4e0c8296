package github

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGroups(t *testing.T) {
	id := &Identity{
		Orgs: []string{"Acme", "other", "acme"},
		Teams: []Team{
			{Org: "acme", Slug: "sre", Parent: "platform"},
			{Org: "acme", Slug: "platform"},
			{Org: "Acme", Slug: "dev"},
			{Org: "other", Slug: "ops"},
			{Org: "stranger", Slug: "x"}, // org not an active membership
			{Org: "acme", Slug: ""},
		},
	}
	tests := []struct {
		name    string
		allowed []string
		format  string
		want    []string
	}{
		{
			name:    "github format, filtered",
			allowed: []string{"ACME"},
			format:  GroupsFormatGitHub,
			want:    []string{"Acme", "Acme/dev", "Acme/platform", "Acme/sre"},
		},
		{
			name:    "default format is github",
			allowed: []string{"other"},
			want:    []string{"other", "other/ops"},
		},
		{
			name:    "dex format",
			allowed: []string{"acme", "other"},
			format:  GroupsFormatDex,
			want:    []string{"Acme", "Acme:dev", "Acme:platform", "Acme:sre", "other", "other:ops"},
		},
		{
			name: "no allowed orgs means all orgs",
			want: []string{"Acme", "Acme/dev", "Acme/platform", "Acme/sre", "other", "other/ops"},
		},
		{
			name:    "allowed org without membership",
			allowed: []string{"stranger"},
			want:    nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := id.Groups(tt.allowed, tt.format)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Groups(%q, %q) (-want +got):\n%s", tt.allowed, tt.format, diff)
			}
		})
	}
}

func TestGroupsEmpty(t *testing.T) {
	if got := (&Identity{}).Groups(nil, ""); len(got) != 0 {
		t.Errorf("Groups of an empty identity = %q", got)
	}
}
