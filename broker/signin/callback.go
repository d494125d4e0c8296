package signin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/broker/internal/page"
	"github.com/ghbroker/ghbroker/web"
)

// callback is GitHub's redirect URI: it checks the single-use state against
// the browser that started the sign-in, exchanges the code, reads who the
// user is, admits members of an allowed org, and starts the session.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	if len(state) < stateIDLen || len(state) > 256 || strings.Trim(state, base64URL) != "" {
		h.pages.BadSignIn(w, r, "The sign-in answer from GitHub had no valid state.")
		return
	}
	ls, err := h.takePending(w, r, state)
	if err != nil {
		h.pages.BadSignIn(w, r, "This sign-in has expired or was already used, or it was started in another browser.")
		return
	}
	if e := q.Get("error"); e != "" {
		h.githubRefused(w, r, e)
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 256 {
		h.pages.BadSignIn(w, r, "GitHub's answer had no code.")
		return
	}
	token, err := h.github.Exchange(ctx, code, ls.Verifier)
	var oe *github.OAuthError
	if errors.As(err, &oe) {
		h.log.Warn("GitHub refused the code exchange", "code", oe.Code, "request_id", page.RequestID(ctx))
		h.pages.BadSignIn(w, r, "GitHub refused to complete the sign-in ("+oe.Code+").")
		return
	}
	if err != nil {
		h.githubProblem(w, r, "completing your sign-in", err)
		return
	}
	id, err := h.github.FetchIdentity(ctx, token, h.sessions.AllowedOrgs())
	if err != nil {
		h.githubProblem(w, r, "reading your organizations and teams", err)
		return
	}
	if !h.sessions.Admitted(id) {
		h.log.Info("sign-in refused: not in an allowed org", "login", id.Login, "restricted", id.RestrictedOrgs)
		h.pages.Problem(w, r, http.StatusForbidden, h.refusal(id), 0)
		return
	}
	st, err := h.sessions.Start(ctx, token, id)
	if err != nil {
		h.pages.Internal(w, r, "starting your session", err)
		return
	}
	h.sessions.SetCookies(w, r, st.Token, st.SID)
	h.log.Info("signed in", "login", st.Session.Login, "sub", st.Session.Subject, "groups", len(st.Session.Groups), "request_id", page.RequestID(ctx))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, ls.RedirectTo, http.StatusFound)
}

// base64URL are the characters of our states.
const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// githubRefused answers an error GitHub redirected back with.
func (h *Handler) githubRefused(w http.ResponseWriter, r *http.Request, code string) {
	if code == "access_denied" {
		h.pages.Problem(w, r, http.StatusForbidden, web.Problem{
			Title:   "GitHub sign-in was cancelled",
			Message: "You did not authorize ghbroker on GitHub, so you are not signed in.",
			Retry:   "/login",
		}, 0)
		return
	}
	if !validErrorCode(code) {
		code = "unknown error"
	}
	h.log.Warn("GitHub redirected back with an error", "error", code)
	h.pages.Problem(w, r, http.StatusBadGateway, web.Problem{
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
