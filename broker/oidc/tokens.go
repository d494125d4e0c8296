package oidc

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/authz/verify"
	"github.com/ghbroker/ghbroker/broker/internal/secret"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/store"
)

// defaultTokenTTL is the lifetime of ID and access tokens for clients
// that do not set their own.
const defaultTokenTTL = time.Hour

// issued is what the token endpoint hands out.
type issued struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	IDToken      string `json:"id_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// mintTokens signs an access token (RFC 9068) and an ID token (OIDC Core
// §2) for sess. nonce is empty on refresh.
func (p *Provider) mintTokens(c *Client, sess store.Session, scopes []string, nonce string, now time.Time) (issued, error) {
	scope := strings.Join(scopes, " ")
	ttl := c.TokenTTL
	if ttl <= 0 {
		ttl = defaultTokenTTL
	}
	exp := jwt.NewNumericDate(now.Add(ttl))
	verified := sess.EmailVerified
	// The access token carries identity and groups: the authz check and
	// /userinfo read them without a store lookup. Only a client with
	// gateway access gets the audience the authz check requires.
	aud := jwt.Audience{p.issuer, c.ID}
	if c.GatewayAccess {
		aud = append(aud, claims.GatewayAudience(p.issuer))
	}
	at := &claims.Claims{
		Claims: jwt.Claims{
			Issuer: p.issuer, Subject: sess.Subject, Audience: aud,
			IssuedAt: jwt.NewNumericDate(now), Expiry: exp, ID: secret.Random(12),
		},
		AuthTime: jwt.NewNumericDate(sess.AuthTime), ClientID: c.ID, Scope: scope, SessionID: sess.ID, IssuedAtMillis: now.UnixMilli(),
		PreferredUsername: sess.Login, Groups: sess.Groups,
	}
	access, err := p.keys.Sign(claims.KindAccess, at)
	if err != nil {
		return issued{}, fmt.Errorf("broker: sign access token: %w", err)
	}
	id := &claims.Claims{
		Claims: jwt.Claims{
			Issuer: p.issuer, Subject: sess.Subject, Audience: jwt.Audience{c.ID},
			IssuedAt: jwt.NewNumericDate(now), Expiry: exp,
		},
		AuthTime: jwt.NewNumericDate(sess.AuthTime), Nonce: nonce, AuthorizedParty: c.ID,
		AccessTokenHash: atHash(access), SessionID: sess.ID, IssuedAtMillis: now.UnixMilli(),
	}
	if slices.Contains(scopes, "profile") {
		id.Name, id.PreferredUsername, id.Picture = sess.Name, sess.Login, sess.Picture
	}
	if slices.Contains(scopes, "email") && sess.Email != "" {
		id.Email, id.EmailVerified = sess.Email, &verified
	}
	if slices.Contains(scopes, "groups") {
		id.Groups = sess.Groups
	}
	idt, err := p.keys.Sign(claims.KindID, id)
	if err != nil {
		return issued{}, fmt.Errorf("broker: sign ID token: %w", err)
	}
	return issued{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(ttl.Seconds()), IDToken: idt, Scope: scope}, nil
}

// atHash is the OIDC Core §3.1.3.6 at_hash: the left half of the hash of
// the access token, with the hash of the token's own algorithm: SHA-256 for
// RS256 and ES256, SHA-512 for EdDSA (Ed25519).
func atHash(token string) string {
	var sum []byte
	if tokenAlg(token) == "EdDSA" {
		h := sha512.Sum512([]byte(token))
		sum = h[:]
	} else {
		h := sha256.Sum256([]byte(token))
		sum = h[:]
	}
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// tokenAlg reads the "alg" of a compact JWS we just signed.
func tokenAlg(token string) string {
	h, _ := verify.Peek(token)
	return h.Alg
}

// verifyIDTokenHint checks an id_token_hint: signed by one of our
// published keys, issued by us, an ID token, any audience (the caller
// checks the client). Expired hints are accepted (OIDC RP-Initiated
// Logout §2).
func (p *Provider) verifyIDTokenHint(token string) (*claims.Claims, error) {
	c, err := p.verifier.VerifyIDTokenHint(token)
	if err != nil {
		return nil, errHint
	}
	return c, nil
}
