package broker

import (
	"crypto/subtle"
	"errors"
	"net/http"

	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/web"
)

// callback is GitHub's redirect URI: it checks the single-use state against
// the browser that started the sign-in, exchanges the code, reads who the
// user is, admits members of an allowed org, and starts the session.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 256 {
		s.badSignIn(w, r, "The sign-in answer from GitHub had no valid state.")
		return
	}
	ls, err := s.opts.Store.TakeLoginState(ctx, hashSecret(state))
	if errors.Is(err, store.ErrNotFound) {
		s.badSignIn(w, r, "This sign-in has expired or was already used.")
		return
	}
	if err != nil {
		s.internalProblem(w, r, "reading the sign-in state", err)
		return
	}
	bind, err := r.Cookie(s.bindCookieName())
	if err != nil || subtle.ConstantTimeCompare([]byte(hashSecret(bind.Value)), []byte(ls.BrowserHash)) != 1 {
		s.badSignIn(w, r, "This sign-in was started in another browser.")
		return
	}
	if e := q.Get("error"); e != "" {
		s.githubRefused(w, r, e)
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 256 {
		s.badSignIn(w, r, "GitHub's answer had no code.")
		return
	}
	token, err := s.opts.GitHub.Client.Exchange(ctx, code, ls.Verifier)
	var oe *github.OAuthError
	if errors.As(err, &oe) {
		s.opts.Logger.Warn("GitHub refused the code exchange", "code", oe.Code, "request_id", requestID(ctx))
		s.badSignIn(w, r, "GitHub refused to complete the sign-in ("+oe.Code+").")
		return
	}
	if err != nil {
		s.githubProblem(w, r, "completing your sign-in", err)
		return
	}
	id, err := s.opts.GitHub.Client.FetchIdentity(ctx, token, s.opts.GitHub.AllowedOrgs)
	if err != nil {
		s.githubProblem(w, r, "reading your organizations and teams", err)
		return
	}
	if p := s.refusal(id); p != nil {
		s.opts.Logger.Info("sign-in refused: not in an allowed org", "login", id.Login, "restricted", id.RestrictedOrgs)
		s.problem(w, r, http.StatusForbidden, *p, 0)
		return
	}
	now := s.opts.Now()
	sess := store.Session{ID: randomToken(16), AuthTime: now, Renewed: now, Expires: now.Add(s.opts.Session.MaxAge)}
	fillIdentity(&sess, id, s.groups(id))
	sess.GitHubToken = s.sealer.seal(token, sess.ID)
	sess, sid, err := s.newSession(ctx, sess)
	if err != nil {
		s.internalProblem(w, r, "starting your session", err)
		return
	}
	tok, err := s.mintSession(sess, now)
	if err != nil {
		s.internalProblem(w, r, "signing your session token", err)
		return
	}
	s.setSessionCookies(w, r, tok, sid)
	s.opts.Logger.Info("signed in", "login", sess.Login, "sub", sess.Subject, "groups", len(sess.Groups), "request_id", requestID(ctx))
	if ls.AuthRequest != nil && s.resumeAuthorize != nil {
		s.resumeAuthorize(w, r, *ls.AuthRequest, sess)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, ls.RedirectTo, http.StatusFound)
}

// badSignIn is a 400 page for a sign-in that cannot continue.
func (s *Server) badSignIn(w http.ResponseWriter, r *http.Request, msg string) {
	s.problem(w, r, http.StatusBadRequest, web.Problem{
		Title: "Sign-in could not be completed", Message: msg + " Please start again.", Retry: "/login",
	}, 0)
}

// githubRefused answers an error GitHub redirected back with.
func (s *Server) githubRefused(w http.ResponseWriter, r *http.Request, code string) {
	if code == "access_denied" {
		s.problem(w, r, http.StatusForbidden, web.Problem{
			Title:   "GitHub sign-in was cancelled",
			Message: "You did not authorize ghbroker on GitHub, so you are not signed in.",
			Retry:   "/login",
		}, 0)
		return
	}
	if !validErrorCode(code) {
		code = "unknown error"
	}
	s.opts.Logger.Warn("GitHub redirected back with an error", "error", code)
	s.problem(w, r, http.StatusBadGateway, web.Problem{
		Title:   "GitHub refused the sign-in",
		Message: "GitHub answered " + code + ". If this keeps happening, the OAuth App's callback URL or client id may be misconfigured.",
		Retry:   "/login",
	}, 0)
}

func validErrorCode(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c == '_') {
			return false
		}
	}
	return s != ""
}
