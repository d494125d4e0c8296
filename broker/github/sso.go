package github

import (
	"net/url"
	"strconv"
	"strings"
)

// SSOOrg is an organization that enforces SAML single sign-on and refused
// to say anything about the user because this token has no SSO
// authorization for it: the person may well be a member, but must first
// sign in with the organization's identity provider and authorize the
// token (GitHub REST docs, "SAML SSO and the REST API" in
// https://docs.github.com/rest/authentication/authenticating-to-the-rest-api).
type SSOOrg struct {
	// Org is the organization login: as in the allowed list for a
	// membership read, as in GitHub's URL for a list read.
	Org string
	// URL is where the person authorizes the token for Org, from GitHub's
	// X-GitHub-SSO header. It is set only when it is an https URL (or one
	// with the scheme of Config.WebURL) on the host of Config.WebURL, so it
	// is safe to show as a link; otherwise it is "".
	URL string
}

// ssoHeader is a parsed X-GitHub-SSO response header: "required;
// url=https://github.com/orgs/ORG/sso?authorization_request=…" on a 403,
// "partial-results; organizations=ID,ID" on a list that omits
// organizations.
type ssoHeader struct {
	// required reports "required".
	required bool
	// url is the url parameter of "required", unchecked; "" when absent,
	// repeated or implausible.
	url string
	// partialOrgIDs are the organization ids of "partial-results".
	partialOrgIDs []int64
}

// Bounds on what parseSSOHeader reads; anything bigger is ignored whole.
const (
	maxSSOHeaderLen = 4096
	maxSSOURLLen    = 2048
	maxSSOOrgIDs    = 100
)

// parseSSOHeader reads the X-GitHub-SSO values of a response. The header is
// untrusted input: several header lines, an oversized value, an unknown
// form or a malformed parameter yield the zero value or, for a bad url
// parameter, a "required" without url. It never fails.
func parseSSOHeader(values []string) ssoHeader {
	if len(values) != 1 || len(values[0]) > maxSSOHeaderLen {
		return ssoHeader{}
	}
	kind, params, _ := strings.Cut(values[0], ";")
	switch strings.ToLower(strings.TrimSpace(kind)) {
	case "required":
		h := ssoHeader{required: true}
		urls := 0
		for p := range strings.SplitSeq(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "url") {
				urls++
				h.url = v
			}
		}
		if urls != 1 || len(h.url) > maxSSOURLLen || strings.ContainsAny(h.url, ", \t\"<>") {
			h.url = ""
		}
		return h
	case "partial-results":
		k, v, ok := strings.Cut(strings.TrimSpace(params), "=")
		if !ok || !strings.EqualFold(k, "organizations") {
			return ssoHeader{}
		}
		var h ssoHeader
		for s := range strings.SplitSeq(v, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil || id <= 0 || len(h.partialOrgIDs) == maxSSOOrgIDs {
				return ssoHeader{}
			}
			h.partialOrgIDs = append(h.partialOrgIDs, id)
		}
		return h
	}
	return ssoHeader{}
}

// trustedSSOURL returns raw, normalised, when it is an absolute URL on the
// web host (same host and port) with scheme https or the web base's own,
// without user info; else "". The broker shows it as a link and never
// fetches it.
func (c *Client) trustedSSOURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" ||
		!(u.Scheme == "https" || u.Scheme == c.web.Scheme) ||
		!strings.EqualFold(u.Host, c.web.Host) {
		return ""
	}
	u.Host = strings.ToLower(u.Host)
	return u.String()
}

// ssoOrgFromURL returns the organization an SSO URL names
// ({web base}/orgs/ORG/sso), or "" when it names none plausibly.
func (c *Client) ssoOrgFromURL(trusted string) string {
	u, err := url.Parse(trusted)
	if err != nil {
		return ""
	}
	rest, ok := strings.CutPrefix(u.Path, c.web.Path+"/orgs/")
	if !ok {
		return ""
	}
	org, tail, _ := strings.Cut(rest, "/")
	if tail != "sso" || !validLogin(org) {
		return ""
	}
	return org
}

// validLogin accepts a GitHub account login: 1 to 39 letters, digits and
// hyphens.
func validLogin(s string) bool {
	if s == "" || len(s) > 39 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
