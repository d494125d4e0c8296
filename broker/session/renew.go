package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/broker/internal/secret"
	"github.com/ghbroker/ghbroker/store"
)

// ErrGitHubToken: the session's GitHub token no longer works (revoked on
// GitHub, or it cannot be unsealed). The session has been ended; the person
// must sign in with GitHub again.
var ErrGitHubToken = errors.New("session: the GitHub authorization no longer works")

// NotAdmittedError: GitHub says the person is in no allowed org. When it
// comes from Reread, the session has been ended.
type NotAdmittedError struct {
	// Identity is what GitHub answered.
	Identity *github.Identity
}

func (e *NotAdmittedError) Error() string {
	return "session: " + e.Identity.Login + " is in no allowed organization"
}

// GitHubError: reading GitHub failed (github.IsTemporary tells an outage
// or a rate limit from an answer that retrying will not fix). The session
// is unchanged.
type GitHubError struct{ Err error }

func (e *GitHubError) Error() string { return "session: reading GitHub: " + e.Err.Error() }

// Unwrap returns the GitHub client's error.
func (e *GitHubError) Unwrap() error { return e.Err }

// Admitted reports whether id is a member of an allowed org.
func (m *Manager) Admitted(id *github.Identity) bool {
	for _, o := range id.Orgs {
		for _, a := range m.allowedOrgs {
			if strings.EqualFold(o, a) {
				return true
			}
		}
	}
	return false
}

// AllowedOrgs are the orgs that admit a person.
func (m *Manager) AllowedOrgs() []string { return m.allowedOrgs }

// Started is a fresh session: its record, its session token and the value
// of its renewal cookie.
type Started struct {
	Session store.Session
	Token   string
	SID     string
}

// Start creates the server-side session for a fresh GitHub sign-in of an
// admitted person and mints its session token.
func (m *Manager) Start(ctx context.Context, githubToken string, id *github.Identity) (Started, error) {
	if !m.Admitted(id) {
		return Started{}, &NotAdmittedError{Identity: id}
	}
	now := m.now()
	sess := store.Session{ID: secret.Random(16), AuthTime: now, Renewed: now, Expires: now.Add(m.maxAge)}
	m.fill(&sess, id)
	sess.GitHubToken = m.sealer.seal(githubToken, sess.ID)
	sec := secret.Random(32)
	sess.SecretHash = secret.Hash(sec)
	if err := m.store.CreateSession(ctx, sess); err != nil {
		return Started{}, fmt.Errorf("session: create: %w", err)
	}
	tok, err := m.Mint(sess)
	if err != nil {
		return Started{}, fmt.Errorf("session: sign the session token: %w", err)
	}
	return Started{Session: sess, Token: tok, SID: sess.ID + "." + sec}, nil
}

// Reread re-reads the person's memberships from GitHub with the session's
// stored GitHub token and updates the session with them. It is the one
// renewal step behind silent renewal at /login and the refresh grant.
//
// Errors: ErrGitHubToken or *NotAdmittedError (the session has been ended
// in both cases), *GitHubError, or a store error.
func (m *Manager) Reread(ctx context.Context, sess store.Session) (store.Session, error) {
	token, err := m.sealer.open(sess.GitHubToken, sess.ID)
	if err != nil {
		m.log.Warn("stored GitHub token does not open; signing in again", "session", sess.ID, "err", err)
		m.End(ctx, sess.ID, "renewal")
		return sess, ErrGitHubToken
	}
	id, err := m.github.FetchIdentity(ctx, token, m.allowedOrgs)
	if errors.Is(err, github.ErrBadCredentials) {
		m.log.Info("GitHub token revoked; signing in again", "login", sess.Login)
		m.End(ctx, sess.ID, "renewal")
		return sess, ErrGitHubToken
	}
	if err != nil {
		return sess, &GitHubError{Err: err}
	}
	if !m.Admitted(id) {
		m.End(ctx, sess.ID, "renewal")
		m.RevokeSubject(sess.Subject, "renewal")
		m.log.Info("session revoked at renewal: no longer in an allowed org", "login", id.Login)
		return sess, &NotAdmittedError{Identity: id}
	}
	now := m.now()
	err = m.store.UpdateSession(ctx, sess.ID, func(old store.Session) (store.Session, error) {
		m.fill(&old, id)
		old.Renewed = now
		sess = old
		return old, nil
	})
	if err != nil {
		return sess, fmt.Errorf("session: update: %w", err)
	}
	return sess, nil
}

// fill copies what GitHub says into a session record.
func (m *Manager) fill(sess *store.Session, id *github.Identity) {
	sess.Subject = strconv.FormatInt(id.ID, 10)
	sess.Login = id.Login
	sess.Name = id.Name
	sess.Email = id.Email
	sess.EmailVerified = id.EmailVerified
	sess.Picture = id.AvatarURL
	sess.Groups = id.Groups(m.allowedOrgs, m.groupsFormat)
}
