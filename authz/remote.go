package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Defaults and limits of RemoteKeySet.
const (
	remoteDefaultRefreshEvery = 5 * time.Minute
	remoteDefaultMinRefetch   = 10 * time.Second
	remoteDefaultHTTPTimeout  = 30 * time.Second
	// remoteFetchTimeout bounds one fetch whatever the HTTP client.
	remoteFetchTimeout = 30 * time.Second
	// remoteMaxJWKSBytes bounds the JWKS body read.
	remoteMaxJWKSBytes = 1 << 20
)

// RemoteOptions configure a RemoteKeySet. JWKSURL is required; the zero
// value of every other field has a sensible default.
type RemoteOptions struct {
	// JWKSURL is the issuer's published key set (RFC 7517 §5), the
	// jwks_uri of its discovery document.
	JWKSURL string
	// HTTPClient fetches the key set. Default: a client with a 30s
	// timeout.
	HTTPClient *http.Client
	// Now is the clock of LoadedAt and of the refetch floor. Default
	// time.Now.
	Now func() time.Time
	// RefreshEvery is the period of Run's refresh. Default 5m.
	RefreshEvery time.Duration
	// MinRefetchInterval is the least time between two fetches triggered
	// by unknown kids, and between retries while the issuer fails.
	// Default 10s.
	MinRefetchInterval time.Duration
	// Logger receives fetch failures and key-set changes. Default
	// discards.
	Logger *slog.Logger
}

// RemoteKeySet is a KeySet read from an issuer's JWKS URL, for authz
// replicas that have no store. Lookups read an immutable map behind an
// atomic pointer and never block: the network is only touched by Refresh
// and Run.
//
// An unknown kid asks Run for a refetch, at most once per
// MinRefetchInterval however many lookups miss, so a flood of made-up kids
// never becomes a flood of fetches. A failed fetch (network, HTTP status,
// garbage, no usable key) keeps the last good keys and is logged.
//
// Make one with NewRemoteKeySet; the zero value is not usable.
type RemoteKeySet struct {
	url      string
	client   *http.Client
	now      func() time.Time
	every    time.Duration
	minGap   time.Duration
	log      *slog.Logger
	keys     atomic.Pointer[remoteKeys]
	failing  atomic.Bool
	lastTry  atomic.Int64  // Now().UnixNano() when the last fetch started
	refetch  chan struct{} // capacity 1: a pending refetch request for Run
	mu       sync.Mutex    // guards inflight
	inflight *remoteFetch
}

var _ KeySet = (*RemoteKeySet)(nil)

// remoteKeys is one loaded key set; never modified once stored.
type remoteKeys struct {
	byKID  map[string]jose.JSONWebKey
	loaded time.Time
}

// remoteFetch is a fetch in progress, which concurrent Refresh calls join.
type remoteFetch struct {
	done chan struct{}
	err  error
}

// NewRemoteKeySet validates opts and makes a first fetch, bounded by ctx.
// If that fetch fails the set starts empty (LoadedAt is zero and every kid
// is unknown) and Run retries every MinRefetchInterval: gate readiness on
// LoadedAt. The error reports invalid options only.
func NewRemoteKeySet(ctx context.Context, opts RemoteOptions) (*RemoteKeySet, error) {
	u, err := url.Parse(opts.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("authz: remote key set: JWKSURL must be an absolute http(s) URL")
	}
	if opts.RefreshEvery < 0 || opts.MinRefetchInterval < 0 {
		return nil, errors.New("authz: remote key set: negative interval")
	}
	r := &RemoteKeySet{
		url:     opts.JWKSURL,
		client:  opts.HTTPClient,
		now:     opts.Now,
		every:   opts.RefreshEvery,
		minGap:  opts.MinRefetchInterval,
		log:     opts.Logger,
		refetch: make(chan struct{}, 1),
	}
	if r.client == nil {
		r.client = &http.Client{Timeout: remoteDefaultHTTPTimeout}
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.every == 0 {
		r.every = remoteDefaultRefreshEvery
	}
	if r.minGap == 0 {
		r.minGap = remoteDefaultMinRefetch
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.keys.Store(&remoteKeys{byKID: map[string]jose.JSONWebKey{}})
	_ = r.Refresh(ctx) // logged; Run retries
	return r, nil
}

// PublicKey returns the key with kid from the last good key set. A miss
// returns at once; it asks Run for a refetch unless one started less than
// MinRefetchInterval ago.
func (r *RemoteKeySet) PublicKey(kid string) (jose.JSONWebKey, bool) {
	if k, ok := r.keys.Load().byKID[kid]; ok {
		return k, true
	}
	if r.now().UnixNano()-r.lastTry.Load() >= int64(r.minGap) {
		select {
		case r.refetch <- struct{}{}:
		default: // one is pending already
		}
	}
	return jose.JSONWebKey{}, false
}

// LoadedAt is when the last good key set was fetched, for the key-set-age
// metric and readiness; zero before the first success.
func (r *RemoteKeySet) LoadedAt() time.Time { return r.keys.Load().loaded }

// Refresh fetches the key set now and swaps it in. Concurrent calls share
// one fetch. On failure the last good keys stay in place and the error is
// returned (and logged).
func (r *RemoteKeySet) Refresh(ctx context.Context) error {
	r.mu.Lock()
	if f := r.inflight; f != nil {
		r.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return fmt.Errorf("authz: refresh JWKS: %w", ctx.Err())
		}
	}
	f := &remoteFetch{done: make(chan struct{})}
	r.inflight = f
	r.mu.Unlock()

	f.err = r.fetch(ctx)

	r.mu.Lock()
	r.inflight = nil
	r.mu.Unlock()
	close(f.done)
	return f.err
}

// Run refreshes the key set every RefreshEvery (every MinRefetchInterval
// while fetches fail) and when an unknown kid asks for it, until ctx is
// done. Without Run, the set only changes through Refresh.
func (r *RemoteKeySet) Run(ctx context.Context) {
	t := time.NewTimer(r.nextRefresh())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.refetch:
			if r.now().UnixNano()-r.lastTry.Load() < int64(r.minGap) {
				continue // a fetch started meanwhile
			}
		}
		_ = r.Refresh(ctx) // logged
		t.Reset(r.nextRefresh())
	}
}

// nextRefresh is the delay before Run's next periodic fetch.
func (r *RemoteKeySet) nextRefresh() time.Duration {
	if r.failing.Load() {
		return r.minGap
	}
	return r.every
}

// fetch downloads, filters and installs the key set.
func (r *RemoteKeySet) fetch(ctx context.Context) error {
	r.lastTry.Store(r.now().UnixNano())
	byKID, skipped, err := r.download(ctx)
	if err != nil {
		r.failing.Store(true)
		cur := r.keys.Load()
		r.log.Warn("JWKS refresh failed; keeping the last good keys",
			"url", r.url, "err", err, "keys", len(cur.byKID), "loaded_at", cur.loaded)
		return fmt.Errorf("authz: refresh JWKS: %w", err)
	}
	r.failing.Store(false)
	old := r.keys.Swap(&remoteKeys{byKID: byKID, loaded: r.now()})
	if !remoteSameKIDs(old.byKID, byKID) {
		kids := make([]string, 0, len(byKID))
		for kid := range byKID {
			kids = append(kids, kid)
		}
		slices.Sort(kids)
		r.log.Info("JWKS loaded", "url", r.url, "kids", kids, "skipped", skipped)
	}
	return nil
}

// download GETs the key set and keeps its usable keys by kid. skipped
// counts the keys left out.
func (r *RemoteKeySet) download(ctx context.Context) (byKID map[string]jose.JSONWebKey, skipped int, err error) {
	ctx, cancel := context.WithTimeout(ctx, remoteFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10) // let the connection be reused
		return nil, 0, fmt.Errorf("unexpected HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, remoteMaxJWKSBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read body: %w", err)
	}
	if len(body) > remoteMaxJWKSBytes {
		return nil, 0, fmt.Errorf("body larger than %d bytes", remoteMaxJWKSBytes)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, 0, errors.New("body is not a JWK set")
	}
	byKID = make(map[string]jose.JSONWebKey, len(set.Keys))
	dups := map[string]bool{}
	for _, raw := range set.Keys {
		k, ok := remoteUsableKey(raw)
		if !ok {
			skipped++
			continue
		}
		if _, dup := byKID[k.KeyID]; dup || dups[k.KeyID] {
			// Two keys, one kid: trust neither.
			dups[k.KeyID] = true
			delete(byKID, k.KeyID)
			continue
		}
		byKID[k.KeyID] = k
	}
	for range dups {
		skipped++
	}
	if len(byKID) == 0 {
		return nil, skipped, fmt.Errorf("no usable signing key among %d", len(set.Keys))
	}
	return byKID, skipped, nil
}

// remoteUsableKey parses one JWK and keeps it only if it is a public
// signing key (RFC 7517 §4.2 "use" of "sig" or absent) with a kid and an
// asymmetric algorithm that fits its type and size (jwsKeyFits). Private
// and symmetric keys are refused before go-jose parses them. A missing
// "alg" is inferred from the key type.
func remoteUsableKey(raw json.RawMessage) (jose.JSONWebKey, bool) {
	var peek struct {
		Kty string          `json:"kty"`
		D   json.RawMessage `json:"d"`
		K   json.RawMessage `json:"k"`
	}
	if json.Unmarshal(raw, &peek) != nil || peek.D != nil || peek.K != nil ||
		(peek.Kty != "RSA" && peek.Kty != "EC" && peek.Kty != "OKP") {
		return jose.JSONWebKey{}, false
	}
	var k jose.JSONWebKey
	if k.UnmarshalJSON(raw) != nil || k.KeyID == "" || (k.Use != "" && k.Use != "sig") ||
		!k.IsPublic() || !k.Valid() {
		return jose.JSONWebKey{}, false
	}
	if k.Algorithm == "" {
		k.Algorithm = string(remoteInferAlgorithm(k.Key))
	}
	if alg := jose.SignatureAlgorithm(k.Algorithm); !jwsAsymmetric(alg) || !jwsKeyFits(alg, k.Key) {
		return jose.JSONWebKey{}, false
	}
	k.Certificates = nil
	return k, true
}

// remoteInferAlgorithm is the algorithm assumed for a key published without
// "alg": the one ghbroker signs with for its type.
func remoteInferAlgorithm(key any) jose.SignatureAlgorithm {
	switch key := key.(type) {
	case *rsa.PublicKey:
		return jose.RS256
	case *ecdsa.PublicKey:
		switch key.Curve {
		case elliptic.P256():
			return jose.ES256
		case elliptic.P384():
			return jose.ES384
		case elliptic.P521():
			return jose.ES512
		}
	case ed25519.PublicKey:
		return jose.EdDSA
	}
	return ""
}

// remoteSameKIDs reports whether a and b hold the same kids.
func remoteSameKIDs(a, b map[string]jose.JSONWebKey) bool {
	if len(a) != len(b) {
		return false
	}
	for kid := range a {
		if _, ok := b[kid]; !ok {
			return false
		}
	}
	return true
}
