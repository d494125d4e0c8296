package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ghbroker/ghbroker/broker/webhook"
	"github.com/ghbroker/ghbroker/store"
)

// Apply carries out a GitHub webhook event (it is the webhook handler's
// Applier):
//
//   - a member removed from or blocked by an org: their tokens issued before
//     are refused, and each of their sessions re-reads GitHub now, ending
//     the ones whose person is in no allowed org any more;
//   - a team membership added or removed: their tokens issued before are
//     refused, so silent renewal mints the current groups;
//   - a team deleted or renamed, an org renamed: the tokens of everyone
//     whose session names the old team or org are refused.
func (m *Manager) Apply(ctx context.Context, e webhook.Event) error {
	switch e.Kind {
	case webhook.LeftOrg, webhook.MembershipChanged:
		sub := strconv.FormatInt(e.UserID, 10)
		m.RevokeSubject(sub, "webhook")
		if e.Kind == webhook.LeftOrg {
			return m.recheckSubject(ctx, sub)
		}
		return nil
	case webhook.TeamGone:
		return m.revokeGroup(ctx, e.Org, e.Team)
	case webhook.TeamRenamed:
		return m.revokeGroup(ctx, e.Org, e.OldTeam)
	case webhook.OrgRenamed:
		return m.revokeGroup(ctx, e.OldOrg, "")
	}
	return nil
}

func (m *Manager) sessionsWhere(ctx context.Context, keep func(store.Session) bool) ([]store.Session, error) {
	all, err := m.store.ListSessions(ctx)
	if err != nil {
		return nil, fmt.Errorf("session: list: %w", err)
	}
	var out []store.Session
	for _, s := range all {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// recheckSubject re-reads GitHub for every session of sub; Reread ends the
// ones whose person is no longer admitted.
func (m *Manager) recheckSubject(ctx context.Context, sub string) error {
	ss, err := m.sessionsWhere(ctx, func(s store.Session) bool { return s.Subject == sub })
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range ss {
		var na *NotAdmittedError
		if _, err := m.Reread(ctx, s); err != nil && !errors.As(err, &na) && !errors.Is(err, ErrGitHubToken) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// revokeGroup refuses the tokens of every subject whose session names the
// group org/team (team "" means the org and all of its teams).
func (m *Manager) revokeGroup(ctx context.Context, org, team string) error {
	if org == "" {
		return nil
	}
	named := func(g string) bool {
		o, t, hasTeam := strings.Cut(g, "/")
		if !hasTeam {
			o, t, hasTeam = strings.Cut(g, ":") // Dex's org:team
		}
		if !strings.EqualFold(o, org) {
			return false
		}
		return team == "" || (hasTeam && strings.EqualFold(t, team))
	}
	ss, err := m.sessionsWhere(ctx, func(s store.Session) bool {
		for _, g := range s.Groups {
			if named(g) {
				return true
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, s := range ss {
		if !done[s.Subject] {
			done[s.Subject] = true
			m.RevokeSubject(s.Subject, "webhook")
		}
	}
	return nil
}
