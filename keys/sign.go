package keys

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/store"
)

// ErrNoKeys is returned when no key set has been loaded.
var ErrNoKeys = errors.New("keys: no signing key loaded")

// kinds are the token kinds a Manager keeps a signer for.
var kinds = []claims.Kind{claims.KindID, claims.KindAccess, claims.KindSession, claims.KindRevocations, claims.KindLogout}

// state is one immutable, loaded key set.
type state struct {
	keys     store.Keys
	loaded   time.Time
	signers  map[claims.Kind]jose.Signer
	public   map[string]jose.JSONWebKey
	jwksJSON []byte
	algs     []string
}

type atomicState struct{ p atomic.Pointer[state] }

func (a *atomicState) Load() *state {
	if s := a.p.Load(); s != nil {
		return s
	}
	return &state{}
}

func (a *atomicState) Store(s *state) { a.p.Store(s) }

// newState decodes k and prepares one signer per token kind, the public key
// index and the serialised JWKS, so that the hot paths only read.
func newState(k store.Keys, now time.Time) (*state, error) {
	st := &state{keys: k, loaded: now, signers: map[claims.Kind]jose.Signer{}, public: map[string]jose.JSONWebKey{}}
	if k.Current == nil {
		return nil, ErrNoKeys
	}
	published := []store.SigningKey{*k.Current}
	if k.Next != nil {
		published = append(published, *k.Next)
	}
	for _, p := range k.Previous {
		if now.Before(p.Expires) {
			published = append(published, p)
		}
	}
	set := jose.JSONWebKeySet{}
	seenAlg := map[string]bool{}
	for i, sk := range published {
		priv, err := decodeKey(sk)
		if err != nil {
			return nil, err
		}
		pub := priv.Public()
		st.public[sk.KID] = pub
		set.Keys = append(set.Keys, pub)
		if !seenAlg[sk.Algorithm] {
			seenAlg[sk.Algorithm] = true
			st.algs = append(st.algs, sk.Algorithm)
		}
		if i != 0 {
			continue
		}
		for _, kind := range kinds {
			opts := (&jose.SignerOptions{}).WithType(jose.ContentType(kind))
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(sk.Algorithm), Key: priv}, opts)
			if err != nil {
				return nil, fmt.Errorf("keys: signer for %s: %w", sk.KID, err)
			}
			st.signers[kind] = s
		}
	}
	raw, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("keys: encode JWKS: %w", err)
	}
	st.jwksJSON = raw
	return st, nil
}

// Sign serialises c as a compact JWS signed with the current key, with the
// "typ" header of kind and the key's "kid". c is usually a *claims.Claims.
func (m *Manager) Sign(kind claims.Kind, c any) (string, error) {
	s := m.cur.Load().signers[kind]
	if s == nil {
		return "", fmt.Errorf("%w for %q tokens", ErrNoKeys, kind)
	}
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	return tok, nil
}

// CurrentAlgorithm is the algorithm of the key that signs now.
func (m *Manager) CurrentAlgorithm() string {
	if k := m.cur.Load().keys.Current; k != nil {
		return k.Algorithm
	}
	return ""
}

// JWKS returns the published key set as JSON: current, next and every
// previous key that can still verify a live token.
func (m *Manager) JWKS() []byte { return m.cur.Load().jwksJSON }

// PublishedAlgorithms lists the algorithms of the published keys.
func (m *Manager) PublishedAlgorithms() []string {
	return append([]string(nil), m.cur.Load().algs...)
}

// Snapshot identifies the key set PublicKey answers from now: two calls
// return equal values only if no key was published or withdrawn in
// between (the set is replaced whole). A verifier uses it to re-check a
// cached token's key without a lookup.
func (m *Manager) Snapshot() any { return m.cur.Load() }

// PublicKey returns the published public key with kid, for verifiers in
// the same process. It never touches the store.
func (m *Manager) PublicKey(kid string) (jose.JSONWebKey, bool) {
	k, ok := m.cur.Load().public[kid]
	return k, ok
}

// LoadedAt is when the in-memory key set was last loaded, for the
// key-set-age metric and readiness.
func (m *Manager) LoadedAt() time.Time { return m.cur.Load().loaded }
