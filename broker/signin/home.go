package signin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ghbroker/ghbroker/broker/internal/page"
	"github.com/ghbroker/ghbroker/broker/session"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/web"
)

// home is the signed-in page: who you are, your orgs and teams, when the
// session renews, and a sign-out button; or a sign-in button.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	c := h.sessions.Current(r)
	if c == nil {
		if _, ok := h.sessions.Renewable(r.Context(), r); ok {
			// An expired token with a live session: renew silently.
			http.Redirect(w, r, LoginURL("/"), http.StatusFound)
			return
		}
		h.pages.Render(w, r, http.StatusOK, "home.html", web.Home{LoginURL: LoginURL("/")})
		return
	}
	now := h.now()
	data := web.Home{
		SignedIn: true, Login: c.PreferredUsername, Name: c.Name, Email: c.Email, AvatarURL: safeAvatar(c.Picture),
		Renews: "in " + page.HumanDuration(c.Expiry.Time().Sub(now)), LogoutURL: "/logout",
		CSRF: h.sessions.CSRFToken(session.FormLogout, c.SessionID),
	}
	groups := c.Groups
	sess, err := h.sessions.Get(r.Context(), c.SessionID)
	switch {
	case err == nil:
		// The stored session has every group, also those trimmed from a
		// large token.
		groups = sess.Groups
		data.Expires = "in " + page.HumanDuration(sess.Expires.Sub(now))
	case errors.Is(err, store.ErrNotFound):
		data.Expires = "when this token expires (the session was ended elsewhere)"
	default:
		h.log.Warn("reading session for the home page failed", "err", err)
		data.Expires = "later"
	}
	for _, g := range groups {
		if org, slug, ok := cutGroup(g); ok {
			data.Teams = append(data.Teams, web.Team{Org: org, Slug: slug})
		} else {
			data.Orgs = append(data.Orgs, g)
		}
	}
	h.pages.Render(w, r, http.StatusOK, "home.html", data)
}

// cutGroup splits "org/team" (or Dex's "org:team").
func cutGroup(g string) (org, team string, ok bool) {
	if i := strings.IndexAny(g, "/:"); i > 0 {
		return g[:i], g[i+1:], true
	}
	return g, "", false
}

// safeAvatar keeps only https avatar URLs (and http ones in dev).
func safeAvatar(u string) string {
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return u
	}
	return ""
}
