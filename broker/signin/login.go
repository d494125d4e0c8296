package signin

import (
	"errors"
	"net/http"
	"time"

	"github.com/ghbroker/ghbroker/broker/internal/page"
	"github.com/ghbroker/ghbroker/broker/internal/secret"
	"github.com/ghbroker/ghbroker/broker/session"
	"github.com/ghbroker/ghbroker/store"
)

// loginStateTTL is how long a GitHub round trip may take.
const loginStateTTL = 10 * time.Minute

// login starts gateway SSO: /login?rd=URL. A valid session goes straight
// back to rd; an expired session token with a live server-side session is
// renewed silently (memberships re-read from GitHub); anything else goes to
// GitHub. prompt=login always goes to GitHub (the OIDC provider sends
// prompt=login and max_age requests here that way); login_hint is passed
// on to GitHub.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	target, _ := h.redirects.safe(q.Get("rd"))
	if q.Get("prompt") != "login" {
		if h.sessions.Current(r) != nil {
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		if sess, ok := h.sessions.Renewable(r.Context(), r); ok {
			if h.renew(w, r, sess, target) {
				return
			}
		}
	}
	h.startGitHub(w, r, target, q.Get("login_hint"), q.Get("prompt") == "login")
}

// startGitHub seals a single-use state, the PKCE verifier and the return
// address into a cookie of this browser and sends it to GitHub's authorize
// endpoint (with its account picker when the relying party asked for a
// fresh sign-in). Nothing is written to the store.
func (h *Handler) startGitHub(w http.ResponseWriter, r *http.Request, target, loginHint string, selectAccount bool) {
	p := pendingSignIn{
		State: secret.Random(32), Verifier: secret.Random(32), RedirectTo: target,
		Expires: h.now().Add(loginStateTTL).Unix(),
	}
	if err := h.savePending(w, r, p); err != nil {
		h.pages.Internal(w, r, "starting the sign-in", err)
		return
	}
	if !validLogin(loginHint) {
		loginHint = ""
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, h.github.AuthCodeURL(p.State, p.Verifier, loginHint, selectAccount), http.StatusFound)
}

// renew re-reads the user's memberships with the stored GitHub token and
// mints a fresh session token. It reports whether it answered the request;
// false means "sign in with GitHub instead" (the GitHub token no longer
// works).
func (h *Handler) renew(w http.ResponseWriter, r *http.Request, sess store.Session, target string) bool {
	ctx := r.Context()
	sess, err := h.sessions.Reread(ctx, sess)
	var (
		na *session.NotAdmittedError
		ge *session.GitHubError
	)
	switch {
	case errors.Is(err, session.ErrGitHubToken):
		return false
	case errors.As(err, &na):
		h.sessions.ClearCookies(w, r) // before the page: headers after WriteHeader are lost
		h.pages.Problem(w, r, http.StatusForbidden, h.refusal(na.Identity), 0)
		return true
	case errors.As(err, &ge):
		h.githubProblem(w, r, "renewing your session", ge.Err)
		return true
	case err != nil:
		h.pages.Internal(w, r, "renewing the session", err)
		return true
	}
	tok, err := h.sessions.Mint(sess)
	if err != nil {
		h.pages.Internal(w, r, "signing the session token", err)
		return true
	}
	h.sessions.SetCookies(w, r, tok, "")
	h.log.Info("session renewed", "login", sess.Login, "request_id", page.RequestID(ctx))
	http.Redirect(w, r, target, http.StatusFound)
	return true
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
