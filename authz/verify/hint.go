package verify

import (
	"fmt"

	"github.com/ghbroker/ghbroker/claims"
)

// VerifyIDTokenHint checks an id_token_hint (OIDC RP-Initiated Logout 1.0
// §2): an ID token ("typ" JWT) signed by a published key, with our "iss",
// an "exp" and no "nbf" or "iat" in the future. Unlike Verify it accepts
// any audience — the caller checks "aud" against the client it knows — and
// an expired token, since a logout hint is usually sent after the ID token
// expired. It never uses or fills the cache. Errors wrap the sentinels as
// Verify's do; never ErrAudience, and ErrExpired only for a token with no
// "exp" at all.
func (v *Verifier) VerifyIDTokenHint(token string) (*claims.Claims, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: empty token", ErrMalformed)
	}
	if len(token) > v.maxBytes {
		return nil, fmt.Errorf("%w: token too large", ErrMalformed)
	}
	c, _, err := v.verify(token, claims.KindID, true)
	return c, err
}
