package signin

import (
	"net/http"

	"github.com/ghbroker/ghbroker/broker/internal/page"
	"github.com/ghbroker/ghbroker/broker/session"
	"github.com/ghbroker/ghbroker/web"
)

// maxFormBytes bounds a sign-out form.
const maxFormBytes = 64 << 10

// logoutFields are the parameters a confirmation carries to its POST.
var logoutFields = []string{"rd", "id_token_hint", "client_id", "post_logout_redirect_uri", "state"}

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
// A signed-in person is asked first: the session ends on a POST carrying
// the confirmation's CSRF token, so a cross-site link or image cannot sign
// anyone out. An id_token_hint that names the signed-in person stands for
// that confirmation (RP-Initiated Logout §2 lets the OP skip it). Either
// way the server-side session is deleted and every cookie (all chunks, on
// the cookie domain) expired.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.pages.BadSignIn(w, r, "The sign-out request was malformed.")
		return
	}
	var target, hintSubject string
	var redirect bool
	switch f := r.Form; {
	case f.Has("post_logout_redirect_uri") || f.Has("id_token_hint") || f.Has("client_id"):
		if h.endSession != nil {
			target, redirect, hintSubject = h.endSession.LogoutTarget(f)
		}
	default:
		target, _ = h.redirects.safe(f.Get("rd"))
		redirect = true
	}
	ctx := r.Context()
	c := h.sessions.Current(r)
	sess, renewable := h.sessions.Renewable(ctx, r)
	sid, subject, login := "", "", ""
	switch {
	case c != nil && c.SessionID != "":
		sid, subject, login = c.SessionID, c.Subject, c.PreferredUsername
	case renewable:
		sid, subject, login = sess.ID, sess.Subject, sess.Login
	}
	confirmed := r.Method == http.MethodPost && h.sessions.CSRFValid(session.FormLogout, sid, r.PostForm.Get("csrf"))
	if sid != "" && !confirmed && (hintSubject == "" || hintSubject != subject) {
		data := web.Logout{Login: login, CSRF: h.sessions.CSRFToken(session.FormLogout, sid)}
		for _, k := range logoutFields {
			if v := r.Form.Get(k); v != "" {
				data.Fields = append(data.Fields, web.Field{Name: k, Value: v})
			}
		}
		h.pages.Render(w, r, http.StatusOK, "logout.html", data)
		return
	}
	if renewable {
		h.sessions.SignOut(ctx, sess.ID)
	}
	if c != nil && c.SessionID != "" && (!renewable || c.SessionID != sess.ID) {
		h.sessions.SignOut(ctx, c.SessionID)
	}
	if sid != "" {
		h.log.Info("signed out", "login", login, "request_id", page.RequestID(ctx))
	}
	h.sessions.ClearCookies(w, r)
	if !redirect {
		h.pages.Render(w, r, http.StatusOK, "home.html", web.Home{LoginURL: LoginURL("/"), SignedOutNow: true})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}
