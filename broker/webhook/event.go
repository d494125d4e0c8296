package webhook

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Kind is what a delivery means for access.
type Kind int

// Kinds.
const (
	// Ignored: nothing changes for anyone's access.
	Ignored Kind = iota
	// LeftOrg: the user was removed from, or blocked by, the org
	// (organization member_removed, org_block blocked). Their tokens issued
	// before are refused; once they are in no allowed org their sessions
	// and refresh families end.
	LeftOrg
	// MembershipChanged: the user was added to or removed from a team
	// (membership added/removed, scope team). Their tokens issued before
	// are refused, so silent renewal mints the current groups.
	MembershipChanged
	// TeamGone: the team was deleted; every member's tokens naming it are
	// refused.
	TeamGone
	// TeamRenamed: the team's name, and so its slug, changed
	// (team edited with changes.name); tokens naming the old slug are
	// refused.
	TeamRenamed
	// OrgRenamed: the org's login changed (organization renamed); tokens
	// naming the old login are refused.
	OrgRenamed
)

func (k Kind) String() string {
	switch k {
	case LeftOrg:
		return "left_org"
	case MembershipChanged:
		return "membership_changed"
	case TeamGone:
		return "team_gone"
	case TeamRenamed:
		return "team_renamed"
	case OrgRenamed:
		return "org_renamed"
	}
	return "ignored"
}

// Event is a delivery reduced to what it changes.
type Event struct {
	// Delivery is GitHub's X-GitHub-Delivery id.
	Delivery string
	// Kind says what changed.
	Kind Kind
	// Org is the org's login (after a rename, the new one); OldOrg the one
	// before a rename.
	Org, OldOrg string
	// Team is the team's slug; OldTeam the slug before a rename.
	Team, OldTeam string
	// UserID and Login name the user, for LeftOrg and MembershipChanged.
	UserID int64
	Login  string
	// At is when the broker received the delivery: tokens issued before it
	// are refused.
	At time.Time
}

// payload is the part of GitHub's webhook payloads that matters here
// (GitHub's "Webhook events and payloads": organization, org_block,
// membership, team).
type payload struct {
	Action string `json:"action"`
	Scope  string `json:"scope"`
	Org    *struct {
		Login string `json:"login"`
	} `json:"organization"`
	Membership *struct {
		User *account `json:"user"`
	} `json:"membership"`
	BlockedUser *account `json:"blocked_user"`
	Member      *account `json:"member"`
	Team        *struct {
		Slug    string `json:"slug"`
		Deleted bool   `json:"deleted"`
	} `json:"team"`
	Changes *struct {
		Name *struct {
			From string `json:"from"`
		} `json:"name"`
		Login *struct {
			From string `json:"from"`
		} `json:"login"`
	} `json:"changes"`
}

type account struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
}

// errPayload: the body is not the event GitHub said it is.
var errPayload = errors.New("webhook: malformed payload")

// parse reduces a delivery of event (the X-GitHub-Event header) to an
// Event. Unknown events and actions are Ignored, not errors.
func parse(event string, body []byte) (Event, error) {
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return Event{}, errPayload
	}
	var e Event
	if p.Org != nil {
		e.Org = p.Org.Login
	}
	user := func(a *account) error {
		if a == nil || a.ID <= 0 || a.Login == "" {
			return errPayload
		}
		e.UserID, e.Login = a.ID, a.Login
		return nil
	}
	switch {
	case event == "organization" && p.Action == "member_removed":
		e.Kind = LeftOrg
		if p.Membership == nil || user(p.Membership.User) != nil {
			return Event{}, errPayload
		}
	case event == "org_block" && p.Action == "blocked":
		e.Kind = LeftOrg
		if user(p.BlockedUser) != nil {
			return Event{}, errPayload
		}
	case event == "organization" && p.Action == "renamed":
		e.Kind = OrgRenamed
		if p.Changes == nil || p.Changes.Login == nil || p.Changes.Login.From == "" {
			return Event{}, errPayload
		}
		e.OldOrg = p.Changes.Login.From
	case event == "membership" && p.Scope == "team" && (p.Action == "added" || p.Action == "removed"):
		e.Kind = MembershipChanged
		if user(p.Member) != nil {
			return Event{}, errPayload
		}
		if p.Team != nil {
			e.Team = p.Team.Slug
		}
	case event == "team" && p.Action == "deleted":
		e.Kind = TeamGone
		if p.Team == nil || p.Team.Slug == "" {
			return Event{}, errPayload
		}
		e.Team = p.Team.Slug
	case event == "team" && p.Action == "edited" && p.Changes != nil && p.Changes.Name != nil:
		e.Kind = TeamRenamed
		if p.Team == nil || p.Team.Slug == "" {
			return Event{}, errPayload
		}
		e.Team, e.OldTeam = p.Team.Slug, slugOf(p.Changes.Name.From)
		if e.OldTeam == e.Team {
			e.Kind = Ignored // a rename that kept the slug (case, punctuation)
		}
	default:
		return Event{Kind: Ignored, Org: e.Org}, nil
	}
	if e.Org == "" {
		return Event{}, errPayload
	}
	return e, nil
}

// slugOf is GitHub's slug of a team name: lower case, every run of
// characters other than letters and digits one hyphen, none at the ends.
func slugOf(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return b.String()
}
