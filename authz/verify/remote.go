package verify

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

// Defaults and limits of Remote.
const (
	defaultRefreshEvery = 5 * time.Minute
	defaultMinRefetch   = 10 * time.Second
	defaultHTTPTimeout  = 30 * time.Second
	// fetchTimeout bounds one fetch whatever the HTTP client.
	fetchTimeout = 30 * time.Second
	// maxJWKSBytes bounds the JWKS body read.
	maxJWKSBytes = 1 << 20
)

// RemoteOptions configure a Remote. JWKSURL is required; the zero
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

// Remote is a KeySet read from an issuer's JWKS URL, for authz
// replicas that have no store. Lookups read an immutable map behind an
// atomic pointer and never block: the network is only touched by Refresh
// and Run.
//
// An unknown kid asks Run for a refetch, at most once per
// MinRefetchInterval however many lookups miss, so a flood of made-up kids
// never becomes a flood of fetches. A failed fetch (network, HTTP status,
// garbage, no usable key) keeps the last good keys and is logged.
//
// Make one with NewRemote; the zero value is not usable.
type Remote struct {
	url      string
	client   *http.Client
	now      func() time.Time
	every    time.Duration
	minGap   time.Duration
	log      *slog.Logger
	keys     atomic.Pointer[loadedKeys]
	failing  atomic.Bool
	lastTry  atomic.Int64  // Now().UnixNano() when the last fetch started
	refetch  chan struct{} // capacity 1: a pending refetch request for Run
	mu       sync.Mutex    // guards inflight
	inflight *inflightFetch
}

var _ KeySet = (*Remote)(nil)

// loadedKeys is one loaded key set; never modified once stored.
type loadedKeys struct {
	byKID  map[string]jose.JSONWebKey
	loaded time.Time
}

// inflightFetch is a fetch in progress, which concurrent Refresh calls join.
type inflightFetch struct {
	done chan struct{}
	err  error
}

// NewRemote validates opts and makes a first fetch, bounded by ctx.
// If that fetch fails the set starts empty (LoadedAt is zero and every kid
// is unknown) and Run retries every MinRefetchInterval: gate readiness on
// LoadedAt. The error reports invalid options only.
func NewRemote(ctx context.Context, opts RemoteOptions) (*Remote, error) {
	u, err := url.Parse(opts.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("verify: remote key set: JWKSURL must be an absolute http(s) URL")
	}
	if opts.RefreshEvery < 0 || opts.MinRefetchInterval < 0 {
		return nil, errors.New("verify: remote key set: negative interval")
	}
	r := &Remote{
		url:     opts.JWKSURL,
		client:  opts.HTTPClient,
		now:     opts.Now,
		every:   opts.RefreshEvery,
		minGap:  opts.MinRefetchInterval,
		log:     opts.Logger,
		refetch: make(chan struct{}, 1),
	}
	if r.client == nil {
		r.client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.every == 0 {
		r.every = defaultRefreshEvery
	}
	if r.minGap == 0 {
		r.minGap = defaultMinRefetch
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.keys.Store(&loadedKeys{byKID: map[string]jose.JSONWebKey{}})
	_ = r.Refresh(ctx) // logged; Run retries
	return r, nil
}

// Snapshot identifies the key set PublicKey answers from now (see
// keys.Manager.Snapshot).
func (r *Remote) Snapshot() any { return r.keys.Load() }

// PublicKey returns the key with kid from the last good key set. A miss
// returns at once; it asks Run for a refetch unless one started less than
// MinRefetchInterval ago.
func (r *Remote) PublicKey(kid string) (jose.JSONWebKey, bool) {
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
func (r *Remote) LoadedAt() time.Time { return r.keys.Load().loaded }

// Refresh fetches the key set now and swaps it in. Concurrent calls share
// one fetch. On failure the last good keys stay in place and the error is
// returned (and logged).
func (r *Remote) Refresh(ctx context.Context) error {
	r.mu.Lock()
	if f := r.inflight; f != nil {
		r.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return fmt.Errorf("verify: refresh JWKS: %w", ctx.Err())
		}
	}
	f := &inflightFetch{done: make(chan struct{})}
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
func (r *Remote) Run(ctx context.Context) {
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
func (r *Remote) nextRefresh() time.Duration {
	if r.failing.Load() {
		return r.minGap
	}
	return r.every
}

// fetch downloads, filters and installs the key set.
func (r *Remote) fetch(ctx context.Context) error {
	r.lastTry.Store(r.now().UnixNano())
	byKID, skipped, err := r.download(ctx)
	if err != nil {
		r.failing.Store(true)
		cur := r.keys.Load()
		r.log.Warn("JWKS refresh failed; keeping the last good keys",
			"url", r.url, "err", err, "keys", len(cur.byKID), "loaded_at", cur.loaded)
		return fmt.Errorf("verify: refresh JWKS: %w", err)
	}
	r.failing.Store(false)
	old := r.keys.Swap(&loadedKeys{byKID: byKID, loaded: r.now()})
	if !sameKIDs(old.byKID, byKID) {
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
func (r *Remote) download(ctx context.Context) (byKID map[string]jose.JSONWebKey, skipped int, err error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
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
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, 0, fmt.Errorf("body larger than %d bytes", maxJWKSBytes)
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
		k, ok := usableKey(raw)
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

// usableKey parses one JWK and keeps it only if it is a public
// signing key (RFC 7517 §4.2 "use" of "sig" or absent) with a kid and an
// asymmetric algorithm that fits its type and size (keyFits). Private
// and symmetric keys are refused before go-jose parses them. A missing
// "alg" is inferred from the key type.
func usableKey(raw json.RawMessage) (jose.JSONWebKey, bool) {
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
		k.Algorithm = string(inferAlgorithm(k.Key))
	}
	if alg := jose.SignatureAlgorithm(k.Algorithm); !asymmetric(alg) || !keyFits(alg, k.Key) {
		return jose.JSONWebKey{}, false
	}
	k.Certificates = nil
	return k, true
}

// inferAlgorithm is the algorithm assumed for a key published without
// "alg": the one ghbroker signs with for its type.
func inferAlgorithm(key any) jose.SignatureAlgorithm {
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

// sameKIDs reports whether a and b hold the same kids.
func sameKIDs(a, b map[string]jose.JSONWebKey) bool {
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
