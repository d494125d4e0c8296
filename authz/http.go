package authz

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// DefaultCookieName is the SSO cookie's name when none is configured.
const DefaultCookieName = "_ghbroker"

// Identity headers set on an allowed request for the upstream, named as
// oauth2-proxy names them so that upstreams configured for it work as is.
const (
	// HeaderUser carries the GitHub login (preferred_username).
	HeaderUser = "X-Auth-Request-User"
	// HeaderEmail carries the primary verified email, when there is one.
	HeaderEmail = "X-Auth-Request-Email"
	// HeaderGroups carries the groups claim, comma-separated, cut at a
	// group boundary so that the header line fits 8 KiB.
	HeaderGroups = "X-Auth-Request-Groups"
	// HeaderGroupsTruncated is "true" when HeaderGroups was cut: the
	// upstream then sees only some of the user's groups, and should read
	// the full list from the token in Authorization.
	HeaderGroupsTruncated = "X-Auth-Request-Groups-Truncated"
)

// envoyHeadersToRemove names, in an Envoy HTTP ext_authz 200, request
// headers Envoy strips before the upstream (external_auth.proto,
// OkHttpResponse.headers_to_remove). The check lists the identity headers
// it did not set, so that a client cannot supply its own.
const envoyHeadersToRemove = "X-Envoy-Auth-Headers-To-Remove"

// maxHeaderLine bounds one identity header line: nginx reads a header into
// an 8 KiB buffer by default, Envoy allows 60 KiB for all of them.
const maxHeaderLine = 8 << 10

// maxGroupsValue is the longest X-Auth-Request-Groups value that keeps the
// whole line ("X-Auth-Request-Groups: …\r\n") within maxHeaderLine.
const maxGroupsValue = maxHeaderLine - len(HeaderGroups) - len(": \r\n")

// HTTPOptions configure the HTTP front door.
type HTTPOptions struct {
	// Issuer is the broker's public URL: the WWW-Authenticate realm and
	// the base of the login redirect. Required.
	Issuer string
	// Verifier checks tokens. Required.
	Verifier TokenVerifier
	// Policy decides. Required.
	Policy *Policy
	// CookieName is the SSO cookie. Default "_ghbroker".
	CookieName string
	// Prefix is stripped from an Ambassador/Envoy check's path: "/authz"
	// on the main listener (Emissary path_prefix), "" on authz.listen.
	Prefix string
	// Dialect fixes the gateway convention of every check (authz.dialect):
	// the headers of other dialects are then never read. DialectAuto (the
	// zero value) tells each check's from its headers (ParseHTTPRequest).
	Dialect Dialect
	// Metrics records decisions. May be nil.
	Metrics *Metrics
	// Logger receives decisions at debug level, checks refused as
	// malformed at warn level (at most one line a second per reason, with
	// a count of the lines held back) and recovered panics at error level.
	// Default discards.
	Logger *slog.Logger
	// Now is the clock of the warn-level rate limit. Default time.Now.
	Now func() time.Time
	// Revocations, when set, refuses withdrawn tokens (sign-out, webhooks,
	// operators) in memory. Nil enforces none.
	Revocations Revocations
	// OmitToken leaves the verified token out of the allowed request
	// (authz.forward_token: false), for upstreams that never verify it:
	// about 800 bytes less per request.
	OmitToken bool
}

// NewHTTPHandler returns the HTTP authorization check for Ambassador/Envoy
// (proto: http), nginx auth_request and Traefik forwardAuth:
//
//   - allowed: 200 exactly (Envoy allows on 200 only), empty body, the
//     identity headers and Authorization: Bearer <the verified token>;
//     X-Auth-Request-Groups is cut at a group boundary to fit 8 KiB and
//     X-Auth-Request-Groups-Truncated: true says so;
//   - no or invalid credential: a browser navigation is redirected (302) to
//     the login; nginx, non-browsers, WebSocket handshakes and requests
//     that presented a Bearer token get 401 with WWW-Authenticate: Bearer
//     (RFC 6750 §3: error= only when a credential was presented);
//   - a CORS preflight without credentials on a rule with allow_preflight:
//     200, as on a public rule;
//   - valid but not admitted: 403, an HTML page for browsers.
//
// It answers every method, never reads the request body and never answers
// 5xx (Envoy would turn it into status_on_error): a recovered panic is
// logged and answered 401. Every response carries Cache-Control: no-store.
func NewHTTPHandler(opts HTTPOptions) (http.Handler, error) {
	c, err := newChecker(opts.Issuer, opts.Verifier, opts.Policy, opts.CookieName, opts.Metrics, opts.Logger, opts.Now)
	if err != nil {
		return nil, err
	}
	if opts.Prefix != "" && (!strings.HasPrefix(opts.Prefix, "/") || strings.HasSuffix(opts.Prefix, "/")) {
		return nil, fmt.Errorf("authz: prefix %q must start with / and not end with /", opts.Prefix)
	}
	switch opts.Dialect {
	case DialectAuto, DialectAmbassador, DialectNginx, DialectTraefik:
	default:
		return nil, fmt.Errorf("authz: unknown dialect %d", opts.Dialect)
	}
	c.revocations = opts.Revocations
	memo := newHeaderMemo()
	memo.noToken = opts.OmitToken
	return &httpHandler{c: c, prefix: opts.Prefix, dialect: opts.Dialect, memo: memo}, nil
}

// httpHandler is the HTTP front door.
type httpHandler struct {
	c       *checker
	prefix  string
	dialect Dialect // DialectAuto: told from the headers
	memo    *headerMemo
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start, mono := h.c.clock.now()
	d, res := doorHTTP, resultUnauthenticated
	defer func() {
		if p := recover(); p != nil {
			if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(p) // net/http's own way to abort a response
			}
			h.c.log.ErrorContext(r.Context(), "authz check panicked; answering 401", slog.Any("panic", p), slog.String("door", d.String()))
			clear(w.Header())
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("WWW-Authenticate", h.c.realm)
			w.WriteHeader(http.StatusUnauthorized)
			res = resultUnauthenticated
		}
		h.c.metrics.observe(d, res, h.c.clock.since(mono))
	}()

	authzHdr, cookies := r.Header[hdrAuthorization], r.Header[hdrCookie]
	req, dialect, err := parseHTTPRequest(r, h.prefix, h.dialect, authzHdr != nil || cookies != nil)
	d = doorOf(dialect)
	v := h.c.check(&req, err, dialect != DialectNginx, authzHdr, cookies, nil, start)
	res = v.result
	h.c.logDecision(r.Context(), d, &req, v)
	resp := h.c.respond(&req, v, h.memo, authzHdr)
	write(w, &resp, dialect == DialectAmbassador)
}

// write puts a response on the wire, every header before WriteHeader.
// withRemove adds Envoy's removal list (the Ambassador dialect only).
func write(w http.ResponseWriter, resp *response, withRemove bool) {
	hdr := w.Header()
	hdr[keyCacheControl] = valNoStore
	switch {
	case resp.identity != nil:
		resp.identity.set(hdr, withRemove)
	case resp.status == http.StatusOK && withRemove:
		hdr[keyRemove] = removeLists[15]
	}
	if resp.location != "" {
		hdr.Set("Location", resp.location)
	}
	if resp.wwwAuthenticate != "" {
		hdr.Set("WWW-Authenticate", resp.wwwAuthenticate)
	}
	for _, f := range resp.headers {
		hdr.Set(f.key, f.value)
	}
	w.WriteHeader(resp.status)
	if len(resp.body) > 0 {
		_, _ = w.Write(resp.body)
	}
}

func truncatedValue(t bool) string {
	if t {
		return "true"
	}
	return ""
}
