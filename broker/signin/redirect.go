package signin

import (
	"fmt"
	"net/url"
	"strings"
)

// redirects validates where the browser may go after sign-in or sign-out:
// paths on the issuer, and https URLs on session.allowed_redirect_domains.
type redirects struct {
	issuer  string
	iss     *url.URL
	secure  bool
	domains []string
}

func newRedirects(issuer string, domains []string) (*redirects, error) {
	iss, err := url.Parse(issuer)
	if err != nil || iss.Host == "" {
		return nil, fmt.Errorf("signin: issuer %q is not an absolute URL", issuer)
	}
	return &redirects{issuer: issuer, iss: iss, secure: iss.Scheme == "https", domains: domains}, nil
}

// safe validates rd, the page to return to after sign-in or
// sign-out, and returns the URL to use: rd rebuilt from its parsed parts
// when it is a path on the issuer or an absolute http(s) URL on
// session.allowed_redirect_domains, and the issuer's home page otherwise.
// The rebuilt URL never carries userinfo, a fragment, backslashes or
// control characters, so browsers and this parser cannot disagree on its
// host.
func (s *redirects) safe(rd string) (string, bool) {
	home := s.issuer + "/"
	if rd == "" || len(rd) > 4096 {
		return home, rd == ""
	}
	for _, c := range rd {
		if c < 0x21 || c == 0x7f || c == '\\' {
			return home, false
		}
	}
	if strings.HasPrefix(rd, "/") {
		// A path on the issuer. "//host" and "/\host" are
		// scheme-relative URLs to another host.
		if strings.HasPrefix(rd, "//") {
			return home, false
		}
		u, err := url.Parse(rd)
		if err != nil || u.Host != "" || u.Scheme != "" || u.User != nil {
			return home, false
		}
		return s.issuer + rebuildPath(u), true
	}
	u, err := url.Parse(rd)
	if err != nil || u.Opaque != "" || u.User != nil || strings.Contains(rd, "@") {
		return home, false
	}
	switch u.Scheme {
	case "https":
	case "http":
		if s.secure {
			return home, false // http only where the issuer is http (dev)
		}
	default:
		return home, false
	}
	host := u.Hostname()
	if !validHostname(host) || u.Port() != s.iss.Port() {
		return home, false
	}
	if !s.hostAllowed(host) {
		return home, false
	}
	out := u.Scheme + "://" + u.Host + rebuildPath(u)
	return out, true
}

// hostAllowed reports whether host is the issuer's or under one of
// session.allowed_redirect_domains.
func (s *redirects) hostAllowed(host string) bool {
	host = strings.ToLower(host)
	if host == strings.ToLower(s.iss.Hostname()) {
		return true
	}
	for _, d := range s.domains {
		d = strings.ToLower(d)
		if base, ok := strings.CutPrefix(d, "."); ok {
			if host == base || strings.HasSuffix(host, d) {
				return true
			}
		} else if host == d {
			return true
		}
	}
	return false
}

// rebuildPath re-serialises path and query; the fragment is dropped.
func rebuildPath(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if strings.HasPrefix(p, "//") {
		p = "/" + strings.TrimLeft(p, "/")
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return p
}

// validHostname accepts DNS names of letters, digits, '-' and '.', and
// nothing that a browser could read differently (percent escapes, IDN in
// raw form, brackets, trailing dots).
func validHostname(h string) bool {
	if h == "" || len(h) > 253 || strings.HasSuffix(h, ".") || strings.HasPrefix(h, ".") {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.':
		default:
			return false
		}
	}
	return !strings.Contains(h, "..")
}
