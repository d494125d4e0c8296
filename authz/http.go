package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ghbroker/ghbroker/authz/verify"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/internal/sessioncookie"
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

// checker is the pipeline both front doors share: credential, decision,
// and the parts of the answer that do not depend on the wire.
type checker struct {
	issuer   string
	verifier TokenVerifier
	policy   *Policy
	cookie   string
	metrics  *Metrics
	log      *slog.Logger
	pages    *pages
	realm    string // `Bearer realm="<issuer>"`
	gateway  string // claims.GatewayAudience(issuer)
	warn     *warnLimiter
	// timed is verifier when it can take the door's clock reading.
	timed timedVerifier
	// revocations, when set, refuses withdrawn tokens.
	revocations Revocations
}

// timedVerifier is a TokenVerifier that checks a cached token against a
// clock reading the door has taken anyway (verify.Verifier.VerifyAt).
type timedVerifier interface {
	VerifyAt(token string, kind claims.Kind, now time.Time) (*claims.Claims, error)
}

// Revocations is what a check asks of the revocation set
// (*revocation.Set, behind a revocation.Follower on a replica): in memory,
// no I/O.
type Revocations interface {
	// Revoked reports whether a token of subject sub and session sid
	// issued at the Unix millisecond iat has been withdrawn.
	Revoked(sub, sid string, iatMillis int64) bool
	// Stale reports that the set is too old to trust (a strict replica
	// whose feed is older than authz.revocations.max_stale): session
	// tokens are then refused, so that browsers sign in again.
	Stale() bool
}

// Errors of a token the revocation set refuses.
var (
	ErrRevoked          = errors.New("authz: the token was revoked")
	ErrRevocationsStale = errors.New("authz: the revocation set is too old to trust session tokens")
)

func newChecker(issuer string, v TokenVerifier, p *Policy, cookie string, m *Metrics, log *slog.Logger, now func() time.Time) (*checker, error) {
	switch {
	case issuer == "":
		return nil, errors.New("authz: an issuer is required")
	case v == nil:
		return nil, errors.New("authz: a token verifier is required")
	case p == nil:
		return nil, errors.New("authz: a policy is required")
	}
	if cookie == "" {
		cookie = DefaultCookieName
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	issuer = strings.TrimSuffix(issuer, "/")
	pg, err := newPages(issuer)
	if err != nil {
		return nil, fmt.Errorf("authz: pages: %w", err)
	}
	timed, _ := v.(timedVerifier)
	return &checker{
		issuer: issuer, verifier: v, policy: p, cookie: cookie, metrics: m, log: log, pages: pg, timed: timed,
		realm: `Bearer realm="` + quoteSafe(issuer) + `"`, gateway: claims.GatewayAudience(issuer), warn: newWarnLimiter(now),
	}, nil
}

// verdict is the outcome of one check, before it is put on a wire.
type verdict struct {
	result  result
	dec     Decision
	claims  *claims.Claims // nil without a valid credential
	token   string         // the verified token
	kind    claims.Kind    // its kind
	bearer  bool           // a Bearer token was presented, valid or not
	refused error          // why a presented credential was refused
	invalid string         // an invalid_request description
	reqErr  error          // why the original request could not be reconstructed
}

// reasonBadPath is the warn-level reason of a check refused for its path.
const reasonBadPath = "the request path is not in normal form"

// check authenticates and decides. redirects says whether the door can send
// a browser to the login (not nginx). authz are the Authorization header
// values; cookies are the Cookie header lines; now is the real clock,
// read when the check arrived.
func (c *checker) check(req *Request, reqErr error, redirects bool, authz []string, cookies []string, ext *Extensions, now time.Time) verdict {
	if reqErr != nil {
		return verdict{result: resultUnauthenticated, invalid: "the original request could not be reconstructed", reqErr: reqErr}
	}
	v := c.authenticate(authz, cookies, now)
	if v.invalid != "" {
		v.result = resultUnauthenticated
		return v
	}
	v.dec = c.policy.Evaluate(v.claims, req, ext)
	switch v.dec.Outcome {
	case Allow:
		v.result = resultAllow
		if v.dec.Public {
			v.result = resultPublic
		}
	case Forbidden:
		v.result = resultForbidden
	default:
		// A Bearer token means an API client, whatever its Accept says:
		// it needs the 401 and its error, not a login page.
		v.result = resultUnauthenticated
		if redirects && req.Browser && !v.bearer {
			v.result = resultRedirect
		}
	}
	return v
}

// authenticate finds and verifies the credential: the Bearer token if the
// Authorization header carries one (RFC 6750 §2.1), else the first valid
// session cookie candidate. A session token is accepted only from the
// cookie: as Bearer it is verified as an access or ID token and refused.
func (c *checker) authenticate(authz []string, cookies []string, now time.Time) verdict {
	var v verdict
	switch {
	case len(authz) > 1:
		v.invalid = "more than one Authorization header"
		return v
	case len(authz) == 1:
		scheme, tok, _ := strings.Cut(strings.TrimSpace(authz[0]), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			break // another scheme (Basic for the upstream, say): not ours
		}
		v.bearer = true
		tok = strings.TrimSpace(tok)
		switch {
		case tok == "":
			v.invalid = "the Bearer token is empty"
		case strings.ContainsAny(tok, ", \t"):
			// Envoy's gRPC check joins repeated headers with commas.
			v.invalid = "more than one Authorization header or token"
		default:
			c.verifyBearer(&v, tok, now)
		}
		return v
	}
	var buf [sessioncookie.MaxCandidates]string
	tok, err := c.pickSession(sessioncookie.AppendCandidates(buf[:0], cookies, c.cookie))
	if tok == "" {
		v.refused = err
		return v
	}
	cl, err := c.verify(tok, claims.KindSession, now)
	if err != nil {
		v.refused = err
		return v
	}
	v.claims, v.token, v.kind = cl, tok, claims.KindSession
	return v
}

// pickSession chooses the one session cookie candidate worth verifying, so
// that a request costs at most one signature check however many forged
// cookies it carries: a token verified before, else the first that passes
// every check but its signature (and has not failed it recently). With no
// such candidate it returns "" and why the first one was refused.
func (c *checker) pickSession(cands []string) (string, error) {
	switch len(cands) {
	case 0:
		return "", nil
	case 1:
		return cands[0], nil // Verify runs the cheap checks first anyway
	}
	var pick string
	var firstErr error
	for _, tok := range cands {
		cached, err := c.verifier.Precheck(tok, claims.KindSession)
		switch {
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
		case cached:
			return tok, nil
		case pick == "":
			pick = tok
		}
	}
	return pick, firstErr
}

// verifyBearer verifies an access token, or an ID token when the token
// says it is one (verify.KindOf); the verifier accepts an ID token only for
// an audience in authz.id_token_audiences. An access token is a gateway
// credential only when its "aud" names claims.GatewayAudience, which the
// broker adds for clients with gateway_access. The access-token attempt
// comes first so that a cached access token costs no header decoding.
func (c *checker) verifyBearer(v *verdict, tok string, now time.Time) {
	cl, err := c.verify(tok, claims.KindAccess, now)
	kind := claims.KindAccess
	switch {
	case err == nil && !cl.Audience.Contains(c.gateway):
		cl, err = nil, errNotForGateway
	case errors.Is(err, verify.ErrType) && isIDToken(tok):
		cl, err = c.verify(tok, claims.KindID, now)
		kind = claims.KindID
	}
	if err != nil {
		v.refused = err
		return
	}
	v.claims, v.token, v.kind = cl, tok, kind
}

// errNotForGateway refuses an access token of a client without
// gateway_access.
var errNotForGateway = fmt.Errorf("%w: the access token's client has no gateway access", verify.ErrAudience)

// isIDToken reports whether tok says it is an ID token (verify.KindOf).
func isIDToken(tok string) bool {
	k, ok := verify.KindOf(tok)
	return ok && k == claims.KindID
}

// verify verifies tok as kind and consults the revocation set; now is the
// real clock (see check).
func (c *checker) verify(tok string, kind claims.Kind, now time.Time) (*claims.Claims, error) {
	var cl *claims.Claims
	var err error
	if c.timed != nil {
		cl, err = c.timed.VerifyAt(tok, kind, now)
	} else {
		cl, err = c.verifier.Verify(tok, kind)
	}
	if err == nil && cl == nil {
		err = verify.ErrMalformed
	}
	if err == nil && c.revocations != nil {
		switch {
		case kind == claims.KindSession && c.revocations.Stale():
			return nil, ErrRevocationsStale
		case c.revocations.Revoked(cl.Subject, cl.SessionID, cl.IssuedAtMs()):
			return nil, ErrRevoked
		}
	}
	return cl, err
}

// wwwAuthenticate is the 401 challenge (RFC 6750 §3): error= only when a
// credential was presented or the request was malformed.
func (c *checker) wwwAuthenticate(v verdict) string {
	switch {
	case v.invalid != "":
		return c.realm + `, error="invalid_request", error_description="` + quoteSafe(v.invalid) + `"`
	case v.refused != nil:
		return c.realm + `, error="invalid_token", error_description="` + refusalText(v.refused) + `"`
	}
	return c.realm
}

// refusalText says why a token was refused, in words safe to send.
func refusalText(err error) string {
	switch {
	case errors.Is(err, verify.ErrExpired):
		return "the token has expired"
	case errors.Is(err, verify.ErrNotYetValid):
		return "the token is not valid yet"
	case errors.Is(err, verify.ErrType):
		return "this kind of token is not accepted here"
	case errors.Is(err, verify.ErrAudience):
		return "the token is not meant for this service"
	case errors.Is(err, verify.ErrIssuer):
		return "the token was issued by someone else"
	case errors.Is(err, verify.ErrMalformed):
		return "the token is malformed"
	case errors.Is(err, ErrRevoked):
		return "the token has been revoked"
	case errors.Is(err, ErrRevocationsStale):
		return "sign in again"
	}
	return "the token is not valid"
}

// quoteSafe drops what cannot appear in a quoted-string header parameter.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '"' || r == '\\' || r > '~' {
			return -1
		}
		return r
	}, s)
}

// identity is what the upstream learns about the user.
type identity struct {
	user, email, groups string
	truncated           bool
}

func identityOf(c *claims.Claims) identity {
	id := identity{user: headerSafe(c.PreferredUsername), email: headerSafe(c.Email)}
	var b strings.Builder
	for _, g := range c.Groups {
		if g == "" || strings.ContainsRune(g, ',') || headerSafe(g) != g {
			continue
		}
		n := len(g)
		if b.Len() > 0 {
			n++
		}
		if b.Len()+n > maxGroupsValue {
			id.truncated = true
			break
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(g)
	}
	id.groups = b.String()
	return id
}

// headerSafe removes control and non-ASCII bytes, which no header value
// may carry; it does not allocate for a clean value.
func headerSafe(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			return strings.Map(func(r rune) rune {
				if r < ' ' || r >= 0x7f {
					return -1
				}
				return r
			}, s)
		}
	}
	return s
}

// displayName names the user on the 403 page.
func displayName(c *claims.Claims) string {
	if c.PreferredUsername != "" {
		return c.PreferredUsername
	}
	return c.Subject
}

// logDecision logs one check at debug level, and a malformed one at warn
// level (warnRefused).
func (c *checker) logDecision(ctx context.Context, d door, req *Request, v verdict) {
	c.warnRefused(ctx, d, v)
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{
		slog.String("door", d.String()), slog.String("result", v.result.String()),
		slog.String("host", req.Host), slog.String("method", req.Method), slog.String("path", req.Path),
	}
	if v.claims != nil {
		attrs = append(attrs, slog.String("user", v.claims.PreferredUsername), slog.String("kind", string(v.kind)))
	}
	if v.dec.Rule != "" {
		attrs = append(attrs, slog.String("rule", v.dec.Rule))
	}
	if v.refused != nil {
		attrs = append(attrs, slog.String("refused", v.refused.Error()))
	}
	if v.invalid != "" {
		attrs = append(attrs, slog.String("invalid", v.invalid))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "authz check", attrs...)
}

// httpHandler is the HTTP front door.
type httpHandler struct {
	c       *checker
	prefix  string
	dialect Dialect // DialectAuto: told from the headers
	memo    *headerMemo
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
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
		h.c.metrics.observe(d, res, time.Since(start))
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
