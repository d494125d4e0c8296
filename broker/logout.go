package broker

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/ghbroker/ghbroker/web"
)

// logout ends the broker session and serves two callers:
//
//   - gateway SSO logout: /logout?rd=URL returns to a validated rd;
//   - OIDC RP-Initiated Logout 1.0 (the end_session_endpoint): with
//     id_token_hint and/or client_id, post_logout_redirect_uri and state.
//     The browser returns to post_logout_redirect_uri only when it is
//     registered, exactly, for the client the hint or client_id names;
//     otherwise it sees the signed-out page and is redirected nowhere.
//
// Either way the server-side session is deleted and every cookie (all
// chunks, on the cookie domain) expired. GET and POST both work.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.badSignIn(w, r, "The sign-out request was malformed.")
		return
	}
	target, redirect := s.logoutTarget(r.Form)
	if sess, ok := s.renewable(r.Context(), r); ok {
		s.deleteSession(r.Context(), sess.ID)
	}
	if c := s.currentSession(r); c != nil && c.SessionID != "" {
		s.deleteSession(r.Context(), c.SessionID)
		s.opts.Logger.Info("signed out", "login", c.PreferredUsername, "request_id", requestID(r.Context()))
	}
	s.clearSessionCookies(w, r)
	if !redirect {
		s.render(w, r, http.StatusOK, "home.html", web.Home{LoginURL: s.loginURL("/"), SignedOutNow: true})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// logoutTarget decides where the browser goes after logout.
func (s *Server) logoutTarget(form url.Values) (string, bool) {
	post := form.Get("post_logout_redirect_uri")
	if post == "" {
		if form.Has("id_token_hint") || form.Has("client_id") {
			return "", false // RP-initiated without a return address: show the page
		}
		t, _ := s.safeRedirect(form.Get("rd"))
		return t, true
	}
	clientID := form.Get("client_id")
	if h := form.Get("id_token_hint"); h != "" {
		hc, err := s.verifyIDTokenHint(h)
		if err != nil || len(hc.Audience) == 0 {
			return "", false
		}
		if clientID != "" && !slices.Contains(hc.Audience, clientID) {
			return "", false
		}
		clientID = hc.Audience[0]
	}
	c, ok := s.client(clientID)
	if !ok || !slices.Contains(c.PostLogoutRedirectURIs, post) {
		return "", false
	}
	if st := form.Get("state"); st != "" {
		return withQuery(post, url.Values{"state": {st}}), true
	}
	return post, true
}
