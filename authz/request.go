package authz

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Request is the original request that a gateway asks about, as every
// front door reconstructs it (ParseHTTPRequest, the gRPC Check). Evaluate
// reads only Host, Path and Preflight.
type Request struct {
	// Method is the original HTTP method.
	Method string
	// Scheme is "http" or "https".
	Scheme string
	// Host is the lower-case host name without port, used for matching.
	Host string
	// HostPort is the host as sent, with its port if any, for rebuilding
	// the original URL.
	HostPort string
	// Path is the path as sent (escaped form), starting with "/".
	Path string
	// RawQuery is the query without "?".
	RawQuery string
	// Browser reports a navigation: GET or HEAD, and Accept contains
	// text/html or is absent (Emissary drops Accept unless configured),
	// and not a WebSocket handshake.
	Browser bool
	// WebSocket reports a WebSocket opening handshake (RFC 6455 §4.1: a
	// GET whose Connection names "upgrade" and Upgrade "websocket"). It is
	// never a navigation: browsers do not follow a redirect answering a
	// handshake, so a sign-in is asked for with 401.
	WebSocket bool
	// Preflight reports a CORS preflight (Fetch Standard §3.2.2,
	// "CORS-preflight request"): OPTIONS with Origin and
	// Access-Control-Request-Method, and neither Cookie nor
	// Authorization (a browser never sends credentials on a preflight, so
	// a request that does is decided as any other).
	Preflight bool
}

// Dialect is the gateway convention an HTTP check arrived in.
type Dialect int

// Dialects, told apart by the headers each gateway sets.
const (
	// DialectAuto is no fixed dialect: each check's is told from its
	// headers (see ParseHTTPRequest). It is an HTTPOptions setting, never
	// the dialect of a parsed check.
	DialectAuto Dialect = iota
	// DialectAmbassador is Emissary/Ambassador AuthService proto: http and
	// Envoy's HTTP ext_authz: the check request is the original request,
	// with the original method and Host and path_prefix + original path.
	DialectAmbassador
	// DialectNginx is nginx auth_request: X-Original-URL or X-Original-URI
	// (+ X-Original-Method). nginx turns only 401 and 403 into something,
	// so this dialect is never answered with a redirect.
	DialectNginx
	// DialectTraefik is Traefik forwardAuth: X-Forwarded-Uri,
	// X-Forwarded-Method, X-Forwarded-Host, X-Forwarded-Proto.
	DialectTraefik
)

// String names the dialect.
func (d Dialect) String() string {
	switch d {
	case DialectAuto:
		return "auto"
	case DialectAmbassador:
		return "ambassador"
	case DialectNginx:
		return "nginx"
	case DialectTraefik:
		return "traefik"
	}
	return "unknown"
}

// ErrUnknownDialect is returned by ParseDialect for a name it does not
// know.
var ErrUnknownDialect = errors.New(`must be "auto", "envoy", "nginx" or "traefik"`)

// ParseDialect reads a configured dialect (authz.dialect): "auto" (or
// empty), "envoy" (Envoy's HTTP ext_authz and Emissary's AuthService
// proto: http, DialectAmbassador), "nginx" or "traefik".
func ParseDialect(s string) (Dialect, error) {
	switch s {
	case "", "auto":
		return DialectAuto, nil
	case "envoy":
		return DialectAmbassador, nil
	case "nginx":
		return DialectNginx, nil
	case "traefik":
		return DialectTraefik, nil
	}
	return DialectAuto, fmt.Errorf("authz: dialect %w, not %q", ErrUnknownDialect, s)
}

// Limits on the original request.
const (
	maxHostLen   = 253  // a DNS name
	maxURILen    = 8192 // path and query
	maxMethodLen = 32
)

// ErrBadRequest is returned by ParseHTTPRequest when the original request
// cannot be reconstructed safely (a hostile or malformed host, path, method
// or scheme). Front doors answer it with 401 invalid_request, never a 5xx.
var ErrBadRequest = errors.New("authz: bad original request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadRequest}, args...)...)
}

// Canonical header keys, read from http.Header without re-canonicalising.
const (
	hdrOriginalURL     = "X-Original-Url"
	hdrOriginalURI     = "X-Original-Uri"
	hdrOriginalMethod  = "X-Original-Method"
	hdrForwardedURI    = "X-Forwarded-Uri"
	hdrForwardedMethod = "X-Forwarded-Method"
	hdrForwardedHost   = "X-Forwarded-Host"
	hdrForwardedProto  = "X-Forwarded-Proto"
	hdrAccept          = "Accept"
	hdrConnection      = "Connection"
	hdrUpgrade         = "Upgrade"
	hdrOrigin          = "Origin"
	hdrACRM            = "Access-Control-Request-Method"
	hdrCookie          = "Cookie"
	hdrAuthorization   = "Authorization"
)

// clientHeaders are the original request's headers that reconstruction
// reads besides its URL and method, gathered by each door from its own
// header representation.
type clientHeaders struct {
	// h, when set, holds the headers below, read when the method needs
	// them (resolve): the HTTP doors, whose headers are the original
	// request's. Without it the fields are filled (the gRPC door).
	h                   http.Header
	accept              []string // nil when absent
	connection, upgrade []string
	origin, acrm        bool // Origin, Access-Control-Request-Method present
	credentials         bool // Cookie or Authorization present
}

// httpClientHeaders reads clientHeaders from an HTTP check, whose headers
// are the original request's (the gateways pass them through);
// credentials is whether it carries Cookie or Authorization, which the
// door has read already.
func httpClientHeaders(h http.Header, credentials bool) clientHeaders {
	return clientHeaders{h: h, credentials: credentials}
}

// resolve reads from h what a request with method needs: Accept for a
// navigation and Connection and Upgrade for a WebSocket handshake (GET or
// HEAD), Origin and Access-Control-Request-Method for a preflight
// (OPTIONS). Each lookup hashes its key, and a check runs on every
// request.
func (ch *clientHeaders) resolve(method string) {
	if ch.h == nil {
		return
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		ch.accept, ch.upgrade = ch.h[hdrAccept], ch.h[hdrUpgrade]
		if ch.upgrade != nil { // Connection matters only beside Upgrade
			ch.connection = ch.h[hdrConnection]
		}
	case http.MethodOptions:
		_, ch.origin = ch.h[hdrOrigin]
		_, ch.acrm = ch.h[hdrACRM]
	}
}

// ParseHTTPRequest reconstructs the original request from an HTTP check,
// choosing the dialect from the headers present (ParseHTTPRequestAs with
// DialectAuto):
//
//   - nginx: X-Original-URL (an absolute URL) and/or X-Original-URI (path
//     and query; host from the Host header, which the documented snippet
//     sets with proxy_set_header Host $host), X-Original-Method, scheme
//     from X-Original-URL, else X-Forwarded-Proto.
//   - Traefik: X-Forwarded-Uri, X-Forwarded-Method, X-Forwarded-Host,
//     X-Forwarded-Proto (Traefik overwrites them unless trustForwardHeader).
//   - otherwise Ambassador/Envoy: the request's own method and Host (Envoy
//     sends the client's original Host; X-Forwarded-Host is ignored because
//     Emissary forwards the client's), its request target minus prefix
//     (Emissary concatenates path_prefix and the original path, so
//     "/authz" + "/foo" = "/authz/foo"; a bare prefix means "/"), scheme
//     from X-Forwarded-Proto.
//
// Headers that say the same thing are one request; headers that disagree
// are refused, never followed, since the client may have sent either and
// only the gateway knows which:
//
//   - nginx: X-Original-URL and X-Original-URI must name the same path and
//     query, and the URL's host must be the Host header's; X-Forwarded-Host,
//     when present, must name the original host. Hosts compare without
//     case and without a trailing dot; a port on one side only is no
//     disagreement (nginx's $host drops the port that $http_host keeps),
//     two different ports are.
//   - a header repeated with one value is that value; repeated with
//     different values it is refused.
//   - nginx and Traefik headers together are refused whatever they say:
//     nothing tells which gateway set its own.
//   - under a prefix (the main listener's /authz), nginx or Traefik
//     headers on a check whose request target names a path beyond the
//     prefix are refused unless that path is the one the headers name:
//     nginx and Traefik call the bare /authz, Emissary calls /authz plus
//     the original path, so such a check is an Emissary check carrying a
//     client's forged headers.
//
// Automatic detection cannot tell every Envoy check with a forged
// X-Original-URI from an nginx check (an Envoy check of "/", any check on
// a door without a prefix): a door behind a gateway that passes client
// headers through (Envoy's http_service with broad allowed_headers) must
// fix its dialect (ParseHTTPRequestAs).
//
// Every error wraps ErrBadRequest. The dialect is returned even then.
func ParseHTTPRequest(r *http.Request, prefix string) (Request, Dialect, error) {
	return ParseHTTPRequestAs(r, prefix, DialectAuto)
}

// ParseHTTPRequestAs is ParseHTTPRequest for a door whose dialect is
// fixed to d (DialectAuto: told from the headers). A fixed dialect reads
// its own headers only: those of another dialect never decide (nor
// refuse) a check, since a client may have sent them through a gateway
// that passes them on. A check without its dialect's headers (nginx:
// X-Original-URI or X-Original-URL; Traefik: X-Forwarded-Uri) is refused.
func ParseHTTPRequestAs(r *http.Request, prefix string, d Dialect) (Request, Dialect, error) {
	_, cookie := r.Header[hdrCookie]
	_, authz := r.Header[hdrAuthorization]
	return parseHTTPRequest(r, prefix, d, cookie || authz)
}

// parseHTTPRequest is ParseHTTPRequestAs for a door that has read the
// credential headers: credentials says whether there is one.
func parseHTTPRequest(r *http.Request, prefix string, d Dialect, credentials bool) (Request, Dialect, error) {
	h := r.Header
	// A fixed dialect reads only its own headers: each lookup hashes its
	// key, and a check runs on every request.
	var nginxURL, nginxURI, traefik bool
	if d == DialectAuto || d == DialectNginx {
		_, nginxURL = h[hdrOriginalURL]
		_, nginxURI = h[hdrOriginalURI]
	}
	if d == DialectAuto || d == DialectTraefik {
		_, traefik = h[hdrForwardedURI]
	}
	ch := httpClientHeaders(h, credentials)
	if d == DialectAuto {
		switch {
		case (nginxURL || nginxURI) && traefik:
			return Request{}, DialectNginx, badRequest("both nginx (X-Original-*) and Traefik (X-Forwarded-Uri) headers")
		case nginxURL || nginxURI:
			d = DialectNginx
		case traefik:
			d = DialectTraefik
		default:
			d = DialectAmbassador
		}
		if d != DialectAmbassador {
			req, uri, err := parseForwarded(r, d, nginxURL, nginxURI, ch)
			if err == nil && !targetAgrees(r, prefix, uri) {
				err = badRequest("the check's request target names another request than its %s headers (a gateway of another dialect, or forged headers: fix the door's dialect)", d)
			}
			return req, d, err
		}
	}
	switch d {
	case DialectNginx:
		if !nginxURL && !nginxURI {
			return Request{}, d, badRequest("no X-Original-URI or X-Original-URL header on a door fixed to nginx")
		}
		req, _, err := parseForwarded(r, d, nginxURL, nginxURI, ch)
		return req, d, err
	case DialectTraefik:
		if !traefik {
			return Request{}, d, badRequest("no X-Forwarded-Uri header on a door fixed to traefik")
		}
		req, _, err := parseForwarded(r, d, false, false, ch)
		return req, d, err
	}
	uri, err := envoyURI(r, prefix)
	if err != nil {
		return Request{}, DialectAmbassador, err
	}
	scheme, err := forwardedProto(h)
	if err != nil {
		return Request{}, DialectAmbassador, err
	}
	req, err := buildRequest(r.Method, scheme, r.Host, uri, ch)
	return req, DialectAmbassador, err
}

// envoyURI is the original request target of an Ambassador/Envoy check:
// the check's own request target minus prefix.
func envoyURI(r *http.Request, prefix string) (string, error) {
	raw := r.RequestURI
	if raw == "" && r.URL != nil {
		raw = r.URL.RequestURI() // a request built in code, not read from the wire
	}
	if len(raw) > maxURILen+len(prefix) {
		return "", badRequest("request target longer than %d bytes", maxURILen)
	}
	if !strings.HasPrefix(raw, "/") {
		return "", badRequest("request target is not a path")
	}
	rest, ok := strings.CutPrefix(raw, prefix)
	switch {
	case !ok:
		return "", badRequest("request target is not under %q", prefix)
	case rest == "":
		return "/", nil
	case rest[0] == '/':
		return rest, nil
	case rest[0] == '?':
		return "/" + rest, nil
	}
	return "", badRequest("request target is not under %q", prefix)
}

// forwardedProto is the scheme named by X-Forwarded-Proto, "http" when it
// is absent. A list (several proxies) contributes its first entry, the
// client-facing one.
func forwardedProto(h http.Header) (string, error) {
	v := h[hdrForwardedProto]
	switch {
	case len(v) == 0:
		return "http", nil
	case v[0] == "https": // what a TLS gateway sends: no list to cut
		return "https", nil
	}
	first, _, _ := strings.Cut(v[0], ",")
	return parseScheme(strings.TrimSpace(first))
}

func parseScheme(s string) (string, error) {
	switch {
	case s == "":
		return "http", nil
	case strings.EqualFold(s, "http"):
		return "http", nil
	case strings.EqualFold(s, "https"):
		return "https", nil
	}
	return "", badRequest("scheme is neither http nor https")
}

// buildRequest validates and assembles the parts of an original request.
func buildRequest(method, scheme, hostport, uri string, ch clientHeaders) (Request, error) {
	if !validMethod(method) {
		return Request{}, badRequest("method is not an HTTP token")
	}
	host, hp, err := parseHost(hostport)
	if err != nil {
		return Request{}, err
	}
	if len(uri) > maxURILen {
		return Request{}, badRequest("request target longer than %d bytes", maxURILen)
	}
	if !strings.HasPrefix(uri, "/") {
		return Request{}, badRequest("path does not start with /")
	}
	if !validURIChars(uri) {
		return Request{}, badRequest("control character or space in the request target")
	}
	p, q, _ := strings.Cut(uri, "?")
	ch.resolve(method)
	ws := method == http.MethodGet && hasToken(ch.connection, "upgrade") && hasToken(ch.upgrade, "websocket")
	return Request{
		Method:    method,
		Scheme:    scheme,
		Host:      host,
		HostPort:  hp,
		Path:      p,
		RawQuery:  q,
		Browser:   !ws && isBrowser(method, ch.accept),
		WebSocket: ws,
		Preflight: method == http.MethodOptions && ch.origin && ch.acrm && !ch.credentials,
	}, nil
}

// isBrowser reports a navigation: GET or HEAD with an Accept header that
// names text/html, or with no Accept header at all.
func isBrowser(method string, accept []string) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	if accept == nil {
		return true
	}
	for _, v := range accept {
		if containsFold(v, "text/html") {
			return true
		}
	}
	return false
}

// parseHost splits "host[:port]", checks it and returns the lower-case
// host without a trailing dot, and the host and port for URL rebuilding.
func parseHost(hostport string) (host, hp string, err error) {
	if hostport == "" {
		return "", "", badRequest("no host")
	}
	if len(hostport) > maxHostLen+6 {
		return "", "", badRequest("host longer than %d bytes", maxHostLen)
	}
	host, port := hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i+1:]
		if !validPort(port) {
			return "", "", badRequest("host has a malformed port")
		}
	}
	host = strings.TrimSuffix(host, ".")
	ok, upper := scanHostName(host)
	if !ok {
		return "", "", badRequest("host is not a DNS name")
	}
	if upper {
		host = asciiLower(host)
	}
	hp = host
	if port != "" {
		hp = host + ":" + port
	}
	return host, hp, nil
}

// LoginRedirect is where an unauthenticated browser is sent: the broker's
// /login with rd set to the original URL. rd is included only for a host
// that some rule names and an http or https scheme, so that the check never
// reflects a host an attacker chose; otherwise it is plain issuer/login.
// (The broker's /login checks rd against allowed_redirect_domains too.)
func LoginRedirect(issuer string, r Request, p *Policy) string {
	base := strings.TrimSuffix(issuer, "/") + "/login"
	if p == nil || (r.Scheme != "http" && r.Scheme != "https") || !p.KnowsHost(r.Host) {
		return base
	}
	if !validHostName(r.Host) || !strings.HasPrefix(r.Path, "/") || !validURIChars(r.Path) || !validURIChars(r.RawQuery) {
		return base
	}
	hp := asciiLower(r.Host)
	if port, ok := strings.CutPrefix(r.HostPort, r.Host+":"); ok && validPort(port) {
		hp += ":" + port
	}
	u := r.Scheme + "://" + hp + r.Path
	if r.RawQuery != "" {
		u += "?" + r.RawQuery
	}
	return base + "?rd=" + url.QueryEscape(u)
}
