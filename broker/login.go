package broker

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/web"
)

// loginStateTTL is how long a GitHub round trip may take.
const loginStateTTL = 10 * time.Minute

// login starts gateway SSO: /login?rd=URL. A valid session goes straight
// back to rd; an expired session token with a live server-side session is
// renewed silently (memberships re-read from GitHub); anything else goes to
// GitHub.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	target, _ := s.safeRedirect(r.URL.Query().Get("rd"))
	if s.currentSession(r) != nil {
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	if sess, ok := s.renewable(r.Context(), r); ok {
		if s.renew(w, r, sess, target) {
			return
		}
	}
	s.startGitHub(w, r, target, nil, r.URL.Query().Get("login_hint"))
}

// startGitHub records a single-use, browser-bound state and sends the
// browser to GitHub's authorize endpoint.
func (s *Server) startGitHub(w http.ResponseWriter, r *http.Request, target string, areq *store.AuthRequest, loginHint string) {
	binding := ""
	if c, err := r.Cookie(s.bindCookieName()); err == nil && len(c.Value) == 43 {
		binding = c.Value // keep one binding across tabs
	} else {
		binding = randomToken(32)
	}
	state, verifier := randomToken(32), randomToken(32)
	err := s.opts.Store.CreateLoginState(r.Context(), store.LoginState{
		ID:          hashSecret(state),
		BrowserHash: hashSecret(binding),
		Verifier:    verifier,
		RedirectTo:  target,
		AuthRequest: areq,
		Expires:     s.opts.Now().Add(loginStateTTL),
	})
	if err != nil {
		s.internalProblem(w, r, "storing the sign-in state", err)
		return
	}
	http.SetCookie(w, s.hostCookie(s.bindCookieName(), binding, loginStateTTL))
	if !validLogin(loginHint) {
		loginHint = ""
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, s.opts.GitHub.Client.AuthCodeURL(state, verifier, loginHint), http.StatusFound)
}

// renew re-reads the user's memberships with the stored GitHub token and
// mints a fresh session token. It reports whether it answered the request;
// false means "sign in with GitHub instead" (the GitHub token no longer
// works).
func (s *Server) renew(w http.ResponseWriter, r *http.Request, sess store.Session, target string) bool {
	ctx := r.Context()
	token, err := s.sealer.open(sess.GitHubToken, sess.ID)
	if err != nil {
		s.opts.Logger.Warn("stored GitHub token does not open; signing in again", "session", sess.ID, "err", err)
		return false
	}
	id, err := s.opts.GitHub.Client.FetchIdentity(ctx, token, s.opts.GitHub.AllowedOrgs)
	if errors.Is(err, github.ErrBadCredentials) {
		s.opts.Logger.Info("GitHub token revoked; signing in again", "login", sess.Login)
		s.deleteSession(ctx, sess.ID)
		return false
	}
	if err != nil {
		s.githubProblem(w, r, "renewing your session", err)
		return true
	}
	if p := s.refusal(id); p != nil {
		s.deleteSession(ctx, sess.ID)
		s.clearSessionCookies(w, r) // before the page: headers after WriteHeader are lost
		s.opts.Logger.Info("session revoked at renewal: no longer in an allowed org", "login", id.Login)
		s.problem(w, r, http.StatusForbidden, *p, 0)
		return true
	}
	now := s.opts.Now()
	err = s.opts.Store.UpdateSession(ctx, sess.ID, func(old store.Session) (store.Session, error) {
		fillIdentity(&old, id, s.groups(id))
		old.Renewed = now
		sess = old
		return old, nil
	})
	if err != nil {
		s.internalProblem(w, r, "renewing the session", err)
		return true
	}
	tok, err := s.mintSession(sess, now)
	if err != nil {
		s.internalProblem(w, r, "signing the session token", err)
		return true
	}
	s.setSessionCookies(w, r, tok, "")
	s.opts.Logger.Info("session renewed", "login", sess.Login, "request_id", requestID(ctx))
	http.Redirect(w, r, target, http.StatusFound)
	return true
}

func (s *Server) deleteSession(ctx context.Context, id string) {
	if err := s.opts.Store.DeleteSession(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.opts.Logger.Warn("deleting session failed", "err", err)
	}
}

func (s *Server) groups(id *github.Identity) []string {
	return id.Groups(s.opts.GitHub.AllowedOrgs, s.opts.GitHub.GroupsFormat)
}

// fillIdentity copies what GitHub says into a session record.
func fillIdentity(sess *store.Session, id *github.Identity, groups []string) {
	sess.Subject = strconv.FormatInt(id.ID, 10)
	sess.Login = id.Login
	sess.Name = id.Name
	sess.Email = id.Email
	sess.EmailVerified = id.EmailVerified
	sess.Picture = id.AvatarURL
	sess.Groups = groups
}

// refusal returns nil when the user is in an allowed org, and otherwise
// the page that says why they may not sign in (answered with 403).
func (s *Server) refusal(id *github.Identity) *web.Problem {
	for _, o := range id.Orgs {
		for _, a := range s.opts.GitHub.AllowedOrgs {
			if strings.EqualFold(o, a) {
				return nil
			}
		}
	}
	if len(id.RestrictedOrgs) > 0 {
		p := web.Problem{
			Title: "Your organization has not approved ghbroker yet",
			Message: "GitHub did not tell ghbroker whether you belong to these organizations, because they restrict " +
				"access by OAuth apps. An organization owner must approve the app on the page linked below; then sign in again.",
			Retry: "/login",
		}
		for _, o := range id.RestrictedOrgs {
			p.Items = append(p.Items, web.Link{Text: o + ": approve ghbroker (organization owners)", URL: s.opts.GitHub.Client.OrgApprovalURL(o)})
		}
		return &p
	}
	p := web.Problem{
		Title:   "You are not in an allowed organization",
		Message: "Signed in to GitHub as " + id.Login + ", but only members of these GitHub organizations may sign in:",
		Retry:   "/login",
	}
	for _, o := range s.opts.GitHub.AllowedOrgs {
		p.Items = append(p.Items, web.Link{Text: o})
	}
	return &p
}

// githubProblem answers a failed GitHub call: 503 with Retry-After when
// GitHub is down or rate-limited, 502-like page otherwise. Both are logged
// with the request id.
func (s *Server) githubProblem(w http.ResponseWriter, r *http.Request, doing string, err error) {
	s.opts.Logger.Warn("GitHub call failed", "doing", doing, "request_id", requestID(r.Context()), "err", err)
	var rl *github.RateLimitError
	title, msg := "GitHub is unavailable", "ghbroker could not reach GitHub while "+doing+". Your other signed-in services keep working."
	if errors.As(err, &rl) {
		title, msg = "GitHub is rate-limiting sign-ins", "GitHub asked ghbroker to slow down while "+doing+". Your other signed-in services keep working."
	}
	if !github.IsTemporary(err) {
		title, msg = "GitHub sent an unexpected answer", "ghbroker could not understand GitHub's answer while "+doing+"."
	}
	s.problem(w, r, http.StatusServiceUnavailable, web.Problem{Title: title, Message: msg, Retry: "/login"}, retryAfter(err))
}

func retryAfter(err error) time.Duration {
	if d := github.RetryAfter(err); d > 0 {
		return d
	}
	return 30 * time.Second
}

// internalProblem logs err and shows a page that leaks nothing of it.
func (s *Server) internalProblem(w http.ResponseWriter, r *http.Request, doing string, err error) {
	s.opts.Logger.Error("internal error", "doing", doing, "request_id", requestID(r.Context()), "err", err)
	s.problem(w, r, http.StatusInternalServerError, web.Problem{
		Title:   "Something went wrong",
		Message: "ghbroker failed while " + doing + ". Please try again; if it keeps failing, give your administrators the reference below.",
		Retry:   "/login",
	}, 0)
}

// validLogin accepts GitHub login syntax for login_hint.
func validLogin(s string) bool {
	if s == "" || len(s) > 39 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// loginURL is the /login URL that returns to rd.
func (s *Server) loginURL(rd string) string {
	return "/login?rd=" + url.QueryEscape(rd)
}
