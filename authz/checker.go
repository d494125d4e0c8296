package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ghbroker/ghbroker/authz/verify"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/internal/sessioncookie"
)

// The checker: the pipeline both front doors share.

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
	// clock reads a check's time and latency.
	clock *checkClock
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
		clock: newCheckClock(),
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
