package session

import (
	"net/http"
	"strings"
	"time"

	"github.com/ghbroker/ghbroker/internal/sessioncookie"
)

// sidCookieName carries "id.secret" for silent renewal: host-only on the
// issuer, never sent to other services. On an https issuer its name has
// the __Host- prefix, so that no sibling subdomain can plant or shadow it
// (RFC 6265bis §4.1.3.2).
func (m *Manager) sidCookieName() string {
	if m.secure {
		return "__Host-" + strings.TrimPrefix(m.cookieName, "_") + "_sid"
	}
	return m.cookieName + "_sid"
}

func (m *Manager) ssoAttrs(maxAge time.Duration) sessioncookie.Attrs {
	return sessioncookie.Attrs{Domain: m.cookieDomain, Secure: m.secure, MaxAge: int(maxAge.Seconds())}
}

// HostCookie is a cookie for the issuer's host only: HttpOnly, SameSite=Lax,
// Secure on an https issuer. A maxAge of zero or less deletes it.
func (m *Manager) HostCookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: m.secure, SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		c.MaxAge = int(maxAge.Seconds())
	} else {
		c.MaxAge = -1
	}
	return c
}

// SetCookies writes the SSO cookie (chunked when large, stale chunks
// expired) and, when sid is set, the host-only renewal cookie.
func (m *Manager) SetCookies(w http.ResponseWriter, r *http.Request, token, sid string) {
	for _, c := range sessioncookie.Split(r, m.cookieName, token, m.ssoAttrs(m.ttl)) {
		http.SetCookie(w, c)
	}
	if sid != "" {
		http.SetCookie(w, m.HostCookie(m.sidCookieName(), sid, m.maxAge))
	}
}

// ClearCookies expires the SSO cookie, its chunks and the renewal cookie.
func (m *Manager) ClearCookies(w http.ResponseWriter, r *http.Request) {
	for _, c := range sessioncookie.Clear(r, m.cookieName, m.ssoAttrs(0)) {
		http.SetCookie(w, c)
	}
	http.SetCookie(w, m.HostCookie(m.sidCookieName(), "", 0))
}
