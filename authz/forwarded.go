package authz

import (
	"net/http"
	"strings"
)

// The nginx and Traefik dialects: the original request travels in
// headers (X-Original-*, X-Forwarded-*), which must agree with each other
// and with the check's own request target.

// parseForwarded reconstructs an nginx or Traefik check, whose original
// request is in headers, and returns the original URI they name.
func parseForwarded(r *http.Request, d Dialect, nginxURL, nginxURI bool, ch clientHeaders) (Request, string, error) {
	if d == DialectNginx {
		return parseNginx(r, nginxURL, nginxURI, ch)
	}
	h := r.Header
	uri, err := singleHeader(h, hdrForwardedURI)
	if err != nil {
		return Request{}, "", err
	}
	method, err := methodOr(h, hdrForwardedMethod, r.Method)
	if err != nil {
		return Request{}, "", err
	}
	scheme, err := forwardedProto(h)
	if err != nil {
		return Request{}, "", err
	}
	host := r.Host // Traefik's request to the check carries the check's own Host
	if _, ok := h[hdrForwardedHost]; ok {
		if host, err = singleHeader(h, hdrForwardedHost); err != nil {
			return Request{}, "", err
		}
	}
	req, err := buildRequest(method, scheme, host, uri, ch)
	return req, uri, err
}

// targetAgrees reports whether the request target of an nginx or Traefik
// check under prefix, taken as an Envoy check's would be (minus prefix),
// names no request ("/", or not under prefix at all) or the one the
// headers name (uri). Without a prefix every target agrees: nginx may
// call authz.listen at any path.
func targetAgrees(r *http.Request, prefix, uri string) bool {
	if prefix == "" {
		return true
	}
	rest, err := envoyURI(r, prefix)
	if err != nil {
		return true
	}
	p, _, _ := strings.Cut(rest, "?")
	return p == "/" || rest == uri
}

// parseNginx reconstructs an nginx auth_request check, which carries
// X-Original-URL (hasURL), X-Original-URI (hasURI) or both, and returns
// the original URI they name.
func parseNginx(r *http.Request, hasURL, hasURI bool, ch clientHeaders) (Request, string, error) {
	h := r.Header
	method, err := methodOr(h, hdrOriginalMethod, r.Method)
	if err != nil {
		return Request{}, "", err
	}
	var scheme, hostport, uri string
	if hasURL {
		raw, err := singleHeader(h, hdrOriginalURL)
		if err != nil {
			return Request{}, "", err
		}
		if scheme, hostport, uri, err = splitAbsoluteURL(raw); err != nil {
			return Request{}, "", err
		}
	}
	if hasURI {
		u, err := singleHeader(h, hdrOriginalURI)
		if err != nil {
			return Request{}, "", err
		}
		switch {
		case !hasURL:
			uri, hostport = u, r.Host
			if scheme, err = forwardedProto(h); err != nil {
				return Request{}, "", err
			}
		case u != uri:
			return Request{}, "", badRequest("X-Original-URL and X-Original-URI name different paths")
		case !sameHost(hostport, r.Host):
			return Request{}, "", badRequest("X-Original-URL and Host name different hosts")
		}
	}
	if _, ok := h[hdrForwardedHost]; ok {
		xfh, err := singleHeader(h, hdrForwardedHost)
		if err != nil {
			return Request{}, "", err
		}
		if !sameHost(xfh, hostport) {
			return Request{}, "", badRequest("X-Forwarded-Host and the original host disagree")
		}
	}
	req, err := buildRequest(method, scheme, hostport, uri, ch)
	return req, uri, err
}

// singleHeader returns the value of header key. Repeated with one value it
// is that value; repeated with different values it is ambiguous.
func singleHeader(h http.Header, key string) (string, error) {
	v := h[key]
	if len(v) == 0 {
		return "", badRequest("no %s header", key)
	}
	for _, o := range v[1:] {
		if o != v[0] {
			return "", badRequest("%s headers that disagree", key)
		}
	}
	return v[0], nil
}

// methodOr returns header key as a method, or def when it is absent.
func methodOr(h http.Header, key, def string) (string, error) {
	if _, ok := h[key]; !ok {
		return def, nil
	}
	return singleHeader(h, key)
}

// splitAbsoluteURL splits nginx's X-Original-URL ("https://host:port/p?q")
// without url.Parse, which accepts far more than a gateway ever sends.
func splitAbsoluteURL(raw string) (scheme, hostport, uri string, err error) {
	if len(raw) > maxURILen+maxHostLen+16 {
		return "", "", "", badRequest("X-Original-URL too long")
	}
	s, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "", "", "", badRequest("X-Original-URL is not an absolute URL")
	}
	if scheme, err = parseScheme(s); err != nil || s == "" {
		return "", "", "", badRequest("X-Original-URL scheme is neither http nor https")
	}
	i := strings.IndexAny(rest, "/?")
	switch {
	case i < 0:
		return scheme, rest, "/", nil
	case rest[i] == '?':
		return scheme, rest[:i], "/" + rest[i:], nil
	}
	return scheme, rest[:i], rest[i:], nil
}
