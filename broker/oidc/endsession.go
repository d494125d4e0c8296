package oidc

import (
	"net/url"
	"slices"
)

// LogoutTarget decides where OIDC RP-Initiated Logout 1.0 returns the
// browser: to post_logout_redirect_uri (with state) only when it is
// registered, exactly, for the client that the id_token_hint (expired hints
// accepted, RP-Initiated Logout §2) or client_id names. Anything else, and
// a request without post_logout_redirect_uri, shows the signed-out page.
// hintSubject is the subject of a valid id_token_hint ("" without one):
// sign-out may skip its confirmation when it names the signed-in person.
func (p *Provider) LogoutTarget(form url.Values) (target string, redirect bool, hintSubject string) {
	clientID := form.Get("client_id")
	if h := form.Get("id_token_hint"); h != "" {
		hc, err := p.verifyIDTokenHint(h)
		if err != nil || len(hc.Audience) == 0 || (clientID != "" && !slices.Contains(hc.Audience, clientID)) {
			return "", false, ""
		}
		clientID, hintSubject = hc.Audience[0], hc.Subject
	}
	post := form.Get("post_logout_redirect_uri")
	if post == "" {
		return "", false, hintSubject
	}
	c, ok := p.client(clientID)
	if !ok || !slices.Contains(c.PostLogoutRedirectURIs, post) {
		return "", false, hintSubject
	}
	if st := form.Get("state"); st != "" {
		return withQuery(post, url.Values{"state": {st}}), true, hintSubject
	}
	return post, true, hintSubject
}
