package revocation

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ghbroker/ghbroker/claims"
)

// The feed is a compact JWS (typ ghbroker-revocations+jwt) signed with the
// broker's current key, so that replicas verify it against the JWKS they
// already hold and need no secret of their own. Its payload says what is
// new since the cursor the replica asked about. A feed older than the last
// one a replica applied is refused, so a replayed feed cannot undo a
// revocation.

// feedPayload is the feed's JWS payload.
type feedPayload struct {
	// Issuer is the broker.
	Issuer string `json:"iss"`
	// IssuedAt is when the broker signed it, in Unix milliseconds.
	IssuedAt int64 `json:"iat_ms"`
	// Cursor is the broker's cursor after these entries.
	Cursor uint64 `json:"cursor"`
	// Full says the entries replace the replica's set.
	Full bool `json:"full,omitempty"`
	// Entries are the live entries after the asked cursor (all of them
	// when Full).
	Entries []Entry `json:"entries"`
	// Epoch names the publisher's numbering: cursors of one broker process
	// mean nothing to another (replicas behind one Service), so a poll
	// from another epoch gets the whole set.
	Epoch string `json:"epoch"`
}

// Signer signs the feed (*keys.Manager).
type Signer interface {
	Sign(kind claims.Kind, c any) (string, error)
}

// maxWait bounds a long poll (below the listeners' 30 s write timeout).
const maxWait = 20 * time.Second

// Publisher serves the signed feed of a set: GET /revocations?since=N
// answers at once when there is something after N, else waits up to
// wait=… (at most 30 s) for news. It belongs on a listener of its own
// (revocations.listen) that no public gateway routes to.
type Publisher struct {
	Issuer string
	Set    *Set
	Signer Signer
	Now    func() time.Time
	Logger *slog.Logger

	epochOnce sync.Once
	epoch     string
}

func (p *Publisher) ownEpoch() string {
	p.epochOnce.Do(func() { p.epoch = rand.Text() })
	return p.epoch
}

// ServeHTTP answers one poll.
func (p *Publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/revocations" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	since, err := strconv.ParseUint(q.Get("since"), 10, 64)
	if q.Get("since") == "" {
		since, err = 0, nil
	}
	wait := time.Duration(0)
	if ws := q.Get("wait"); ws != "" && err == nil {
		wait, err = time.ParseDuration(ws)
	}
	if err != nil || wait < 0 {
		http.Error(w, "since must be a cursor and wait a duration", http.StatusBadRequest)
		return
	}
	wait = min(wait, maxWait)
	epoch := p.ownEpoch()
	sameEpoch := q.Get("epoch") == epoch
	changed := p.Set.Changed()
	if sameEpoch && p.Set.Cursor() == since && wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
	}
	if !sameEpoch {
		since = 0
	}
	entries, next, full := p.Set.Since(since)
	full = full || !sameEpoch
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	if entries == nil {
		entries = []Entry{}
	}
	tok, err := p.Signer.Sign(claims.KindRevocations, feedPayload{
		Issuer: p.Issuer, IssuedAt: Millis(now()), Cursor: next, Full: full, Entries: entries, Epoch: epoch,
	})
	if err != nil {
		if p.Logger != nil {
			p.Logger.Error("signing the revocation feed failed", "err", err)
		}
		http.Error(w, "the feed could not be signed", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/jose")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, tok)
}

// Keys is where a replica finds the broker's public keys (the JWKS it
// already holds, *verify.Remote).
type Keys interface {
	PublicKey(kid string) (jose.JSONWebKey, bool)
}

// Follower keeps a replica's set in step with the broker's feed.
type Follower struct {
	// URL is the feed, e.g. http://ghbroker-internal:8082/revocations.
	URL string
	// Issuer is the broker's issuer, checked in every feed.
	Issuer string
	// Keys verify the feed.
	Keys Keys
	// Set is the replica's set.
	Set *Set
	// Poll bounds the time between requests when the broker answers at
	// once (or fails). Default 1s.
	Poll time.Duration
	// Client makes the requests. Default: one with a timeout above the
	// long poll.
	Client *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives feed problems (rate-limited by Poll). Default
	// discards.
	Logger *slog.Logger

	mu         sync.Mutex
	lastIat    int64        // the newest feed applied, Unix ms
	lastCursor uint64       // its cursor
	epoch      string       // its publisher's epoch
	lastOK     atomic.Int64 // when the last feed was applied, Unix ns (0: never)
	ready      chan struct{}
	once       sync.Once
}

// maxFeedBytes bounds a feed (200,000 entries of ~150 bytes, base64).
const maxFeedBytes = 64 << 20

// Errors of a feed that does not verify.
var (
	ErrFeedSignature = errors.New("revocation: the feed's signature does not verify")
	ErrFeedIssuer    = errors.New("revocation: the feed is from another issuer")
	ErrFeedReplay    = errors.New("revocation: the feed is older than one already applied")
)

func (f *Follower) init() {
	f.once.Do(func() {
		f.ready = make(chan struct{})
		if f.Poll <= 0 {
			f.Poll = time.Second
		}
		if f.Client == nil {
			f.Client = &http.Client{Timeout: maxWait + 10*time.Second}
		}
		if f.Now == nil {
			f.Now = time.Now
		}
		if f.Logger == nil {
			f.Logger = slog.New(slog.DiscardHandler)
		}
	})
}

// Ready is closed once the first feed has been applied.
func (f *Follower) Ready() <-chan struct{} {
	f.init()
	return f.ready
}

// LastApplied is when a feed was last applied (zero: never).
func (f *Follower) LastApplied() time.Time {
	if n := f.lastOK.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Checked is the replica's set as its checks see it. With maxStale > 0
// (authz.revocations.mode: strict) it is stale — checks then refuse
// session tokens, so browsers sign in again — until the first feed and
// whenever no feed has been applied for maxStale; with 0 (best_effort) it
// is never stale and checks decide with the last set received.
func (f *Follower) Checked(maxStale time.Duration) *Checked {
	f.init()
	return &Checked{f: f, maxStale: maxStale}
}

// Checked is a followed set with its staleness rule.
type Checked struct {
	f        *Follower
	maxStale time.Duration
}

// Revoked asks the followed set.
func (c *Checked) Revoked(sub, sid string, iatMillis int64) bool {
	return c.f.Set.Revoked(sub, sid, iatMillis)
}

// Stale reports a strict replica whose set is too old to trust.
func (c *Checked) Stale() bool {
	if c.maxStale <= 0 {
		return false
	}
	last := c.f.lastOK.Load()
	return last == 0 || c.f.Now().Sub(time.Unix(0, last)) > c.maxStale
}

// Run follows the feed until ctx ends: a long poll from the current
// cursor, again as soon as it answers, and after Poll when it fails.
func (f *Follower) Run(ctx context.Context) {
	f.init()
	for ctx.Err() == nil {
		start, before, epoch := f.Now(), f.Set.Cursor(), f.currentEpoch()
		var pause time.Duration
		switch err := f.Fetch(ctx, maxWait); {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			f.Logger.Warn("revocation feed unavailable: deciding with the last set received", "url", f.URL, "err", err)
			pause = f.Poll
		case epoch != "" && f.currentEpoch() != epoch:
			// Another broker replica answered (they share a Service) with
			// its whole set: pace the switches between replicas.
			pause = f.Poll
		case f.Set.Cursor() == before:
			// No news before the long poll's end: a broker that cannot
			// hold the request; ask again after Poll.
			pause = f.Poll - f.Now().Sub(start)
		}
		if pause > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	}
}

func (f *Follower) currentEpoch() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.epoch
}

// Fetch asks for what is new, waiting up to wait, and applies it.
func (f *Follower) Fetch(ctx context.Context, wait time.Duration) error {
	f.init()
	epoch := f.currentEpoch()
	u := fmt.Sprintf("%s?since=%d&wait=%s&epoch=%s", f.URL, f.Set.Cursor(), wait, url.QueryEscape(epoch))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation: the feed answered %s", resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxFeedBytes+1))
	if err != nil {
		return err
	}
	if len(raw) > maxFeedBytes {
		return errors.New("revocation: the feed is too large")
	}
	p, err := f.verify(string(raw))
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Older than the newest feed applied (or, signed in the same
	// millisecond, behind its cursor): a replay that could undo a
	// revocation.
	if p.IssuedAt < f.lastIat || (p.Epoch == f.epoch && p.IssuedAt == f.lastIat && p.Cursor < f.lastCursor) {
		return ErrFeedReplay
	}
	if p.Epoch != f.epoch && !p.Full {
		return ErrFeedReplay // another publisher's entries without the whole set
	}
	if p.Full {
		f.Set.Replace(p.Entries, p.Cursor)
	} else {
		f.Set.Merge(p.Entries, p.Cursor)
	}
	f.lastIat, f.lastCursor, f.epoch = p.IssuedAt, p.Cursor, p.Epoch
	f.lastOK.Store(f.Now().UnixNano())
	select {
	case <-f.ready:
	default:
		close(f.ready)
	}
	return nil
}

// feedAlgorithms are the algorithms the broker signs with.
var feedAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// verify checks the feed's signature against a published key, its type and
// its issuer.
func (f *Follower) verify(tok string) (feedPayload, error) {
	var p feedPayload
	jws, err := jose.ParseSignedCompact(tok, feedAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return p, ErrFeedSignature
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != string(claims.KindRevocations) {
		return p, ErrFeedSignature
	}
	key, ok := f.Keys.PublicKey(h.KeyID)
	if !ok || key.Algorithm != h.Algorithm {
		return p, ErrFeedSignature
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return p, ErrFeedSignature
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return p, ErrFeedSignature
	}
	if p.Issuer != f.Issuer {
		return p, ErrFeedIssuer
	}
	return p, nil
}
