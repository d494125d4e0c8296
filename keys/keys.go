// Package keys owns ghbroker's signing keys: it generates them, rotates them
// through the store, signs tokens with the current key and publishes every
// key that can verify a live token as a JWKS (RFC 7517).
//
// A key set holds a current key (signs), a next key (published before it
// signs, so that relying parties that cache the JWKS have seen it before any
// token carries its kid) and previous keys (verify-only until every token
// they signed has expired). Rotation is one store transaction.
//
// It does not verify tokens for authorization: package authz does that,
// reading the public keys this package publishes through a small interface.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ghbroker/ghbroker/store"
)

// Supported signing algorithms.
const (
	RS256 = string(jose.RS256)
	ES256 = string(jose.ES256)
	EdDSA = string(jose.EdDSA)
)

// Algorithms lists every algorithm this package can sign with, in the order
// discovery documents list them.
var algorithms = []string{RS256, ES256, EdDSA}

// Algorithms returns the signing algorithms this package supports.
func Algorithms() []string { return append([]string(nil), algorithms...) }

// ErrUnsupportedAlgorithm is returned for an algorithm outside Algorithms.
var ErrUnsupportedAlgorithm = errors.New("keys: unsupported algorithm")

// Options configure a Manager. The zero value of every field but KeyStore
// has a sensible default.
type Options struct {
	// Algorithm signs new keys: RS256 (default), ES256 or EdDSA.
	Algorithm string
	// RotateEvery is how long a key signs before the next one takes over,
	// and so also how long a next key is published before it signs.
	// Default 24h.
	RotateEvery time.Duration
	// MaxTokenLifetime is the longest lifetime of any token a key signs;
	// a retired key stays published this long (plus a minute of leeway).
	// Default 24h.
	MaxTokenLifetime time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Generate makes a new private key for an algorithm. Default uses
	// crypto/rand: RSA 2048, P-256, Ed25519.
	Generate func(alg string) (crypto.Signer, error)
	// Logger receives rotation events. Default discards.
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Algorithm == "" {
		o.Algorithm = RS256
	}
	if !validAlgorithm(o.Algorithm) {
		return fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, o.Algorithm)
	}
	if o.RotateEvery <= 0 {
		o.RotateEvery = 24 * time.Hour
	}
	if o.MaxTokenLifetime <= 0 {
		o.MaxTokenLifetime = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Generate == nil {
		o.Generate = GenerateKey
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func validAlgorithm(alg string) bool {
	for _, a := range algorithms {
		if a == alg {
			return true
		}
	}
	return false
}

// GenerateKey makes a new private key for alg from crypto/rand: RSA 2048
// bits for RS256 (RFC 7518 §3.3), P-256 for ES256, Ed25519 for EdDSA.
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case RS256:
		return rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
}

// newSigningKey generates a key and wraps it as a store record whose KID is
// the RFC 7638 SHA-256 thumbprint of the public key.
func newSigningKey(alg string, gen func(string) (crypto.Signer, error), now time.Time) (*store.SigningKey, error) {
	priv, err := gen(alg)
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	jwk := jose.JSONWebKey{Key: priv, Algorithm: alg, Use: "sig"}
	pub := jwk.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("keys: thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	raw, err := jwk.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("keys: encode key: %w", err)
	}
	return &store.SigningKey{KID: jwk.KeyID, Algorithm: alg, PrivateJWK: raw, Created: now.UTC()}, nil
}

// decodeKey turns a stored key into its private JWK, checking that the
// record is consistent (kid, algorithm, key type).
func decodeKey(k store.SigningKey) (jose.JSONWebKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(k.PrivateJWK); err != nil {
		return jwk, fmt.Errorf("keys: decode key %s: %w", k.KID, err)
	}
	if jwk.IsPublic() {
		return jwk, fmt.Errorf("keys: key %s has no private part", k.KID)
	}
	if jwk.KeyID != k.KID || jwk.Algorithm != k.Algorithm {
		return jwk, fmt.Errorf("keys: key %s: stored kid/alg disagree with the JWK", k.KID)
	}
	return jwk, nil
}

// Manager loads the key set from the store, rotates it and signs with the
// current key. Its in-memory view is swapped atomically, so Sign, JWKS and
// Lookup never block on the store.
type Manager struct {
	ks   store.KeyStore
	opts Options
	cur  atomicState
}

// NewManager loads the key set from ks, creating the first keys when the
// store has none, and returns a Manager ready to sign.
func NewManager(ctx context.Context, ks store.KeyStore, opts Options) (*Manager, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	m := &Manager{ks: ks, opts: opts}
	if _, err := m.Rotate(ctx, false); err != nil {
		return nil, err
	}
	return m, nil
}

// Reload reads the key set from the store and swaps it in. It picks up a
// rotation made by another process or replica.
func (m *Manager) Reload(ctx context.Context) error {
	k, err := m.ks.GetKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: load: %w", err)
	}
	return m.install(k)
}

func (m *Manager) install(k store.Keys) error {
	st, err := newState(k, m.opts.Now())
	if err != nil {
		return err
	}
	m.cur.Store(st)
	return nil
}

// Keys returns the key set as last loaded, for inspection (`keys list`).
func (m *Manager) Keys() store.Keys { return m.cur.Load().keys }

// JWKSMaxAge is the Cache-Control max-age for the published key set: a
// quarter of the rotation period (the time a next key is published before it
// signs), at most an hour, so a verifier that honours it has always seen a
// kid before a token carries it.
func JWKSMaxAge(rotateEvery time.Duration) time.Duration {
	return min(rotateEvery/4, time.Hour)
}
