package signin

import (
	"net/http"

	"github.com/ghbroker/ghbroker/broker/internal/page"
	"github.com/ghbroker/ghbroker/web"
)

// maxFormBytes bounds a sign-out form.
const maxFormBytes = 64 << 10

// logout ends the broker session and serves two callers:
//
//   - gateway SSO logout: /logout?rd=URL returns to a validated rd;
//   - OIDC RP-Initiated Logout 1.0 (the end_session_endpoint): with
//     id_token_hint and/or client_id, post_logout_redirect_uri and state.
//     The browser returns to post_logout_redirect_uri only when the OIDC
//     provider (EndSession) says it is registered, exactly, for the client
//     the hint or client_id names; otherwise it sees the signed-out page
//     and is redirected nowhere.
//
// Either way the server-side session is deleted and every cookie (all
// chunks, on the cookie domain) expired. GET and POST both work.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.pages.BadSignIn(w, r, "The sign-out request was malformed.")
		return
	}
	var target string
	var redirect bool
	switch f := r.Form; {
	case f.Has("post_logout_redirect_uri") || f.Has("id_token_hint") || f.Has("client_id"):
		if h.endSession != nil {
			target, redirect = h.endSession.LogoutTarget(f)
		}
	default:
		target, _ = h.redirects.safe(f.Get("rd"))
		redirect = true
	}
	ctx := r.Context()
	if sess, ok := h.sessions.Renewable(ctx, r); ok {
		h.sessions.Delete(ctx, sess.ID)
	}
	if c := h.sessions.Current(r); c != nil && c.SessionID != "" {
		h.sessions.Delete(ctx, c.SessionID)
		h.log.Info("signed out", "login", c.PreferredUsername, "request_id", page.RequestID(ctx))
	}
	h.sessions.ClearCookies(w, r)
	if !redirect {
		h.pages.Render(w, r, http.StatusOK, "home.html", web.Home{LoginURL: LoginURL("/"), SignedOutNow: true})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}
