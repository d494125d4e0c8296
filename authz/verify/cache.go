package verify

import (
	"hash/maphash"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ghbroker/ghbroker/claims"
)

// Cache geometry.
const (
	// tokenCacheMaxShards bounds the number of independently locked shards.
	tokenCacheMaxShards = 64
	// tokenCacheBytesPerEntry is the average memory budget of one entry: a
	// shard holds at most its entry count times this many bytes of tokens
	// and claims, so that a flood of unusually large tokens cannot grow
	// the cache past CacheSize × 4 KiB.
	tokenCacheBytesPerEntry = 4 << 10
	// tokenCacheHashedTail is how many trailing bytes of a token its hash
	// covers: 64 base64url characters, 384 bits of signature.
	tokenCacheHashedTail = 64
	// tokenCacheEntryOverhead is what an entry costs beyond its token and
	// payload bytes (the entry, the claims struct, the map slot).
	tokenCacheEntryOverhead = 512
)

// tokenCacheEntry is one successful verification. It is immutable once in the
// cache, so readers use it without holding the shard lock.
type tokenCacheEntry struct {
	token     string // compared in full on every hit: a hash collision never admits another token
	claims    *claims.Claims
	kid       string
	kind      claims.Kind
	notBefore time.Time    // max(nbf, iat) - leeway
	notAfter  time.Time    // exp + leeway
	cost      int          // bytes charged against the shard's budget
	keys      atomic.Value // the key-set snapshot in which kid was last seen published (stillPublished)
}

// tokenCache is a bounded map of verified tokens, keyed by a per-cache
// seeded hash of the token's tail (see get) and split into shards with their own lock, so
// that concurrent checks rarely meet and no lock is ever held during
// cryptography. When a shard is full a random entry is evicted: O(1), and
// with no bookkeeping on the hit path.
type tokenCache struct {
	seed   maphash.Seed
	mask   uint64
	shards []tokenCacheShard
}

// tokenCacheShard is one lock's worth of the cache, padded so that the locks
// and counters of neighbouring shards do not share a cache line.
type tokenCacheShard struct {
	mu      sync.RWMutex
	entries map[uint64]*tokenCacheEntry
	bytes   int // sum of the entries' cost
	max     int // maximum number of entries
	budget  int // maximum bytes

	hits, misses atomic.Uint64
	_            [64]byte
}

// newTokenCache returns a cache of at most size entries (size > 0).
func newTokenCache(size int) *tokenCache {
	n := 1
	for n*2 <= min(size, tokenCacheMaxShards) {
		n *= 2
	}
	c := &tokenCache{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]tokenCacheShard, n)}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.max = size / n
		if i < size%n {
			sh.max++
		}
		sh.budget = sh.max * tokenCacheBytesPerEntry
		// Not sized for sh.max: the garbage collector scans a map's
		// whole table at every cycle, empty slots too, and a table sized
		// for the default 16,384 entries is about 600 KB.
		sh.entries = make(map[uint64]*tokenCacheEntry)
	}
	return c
}

func (c *tokenCache) shard(hash uint64) *tokenCacheShard { return &c.shards[hash&c.mask] }

// get returns the hash of token and its entry, nil when it is not cached.
//
// Only the tail of the token is hashed: it is signature, unique to each
// token, and hashing a whole 1 KB token would cost more than the rest of a
// hit. Tokens that share a tail share a slot and are told apart by the full
// comparison, so a crafted collision can only miss, never admit.
func (c *tokenCache) get(token string) (uint64, *tokenCacheEntry) {
	hash := maphash.String(c.seed, token[max(0, len(token)-tokenCacheHashedTail):])
	sh := c.shard(hash)
	sh.mu.RLock()
	e := sh.entries[hash]
	sh.mu.RUnlock()
	if e == nil || e.token != token {
		sh.misses.Add(1)
		return hash, nil
	}
	sh.hits.Add(1)
	return hash, e
}

// put caches e for token (whose hash is hash), evicting random entries
// while the shard is over its entry count or byte budget.
func (c *tokenCache) put(hash uint64, token string, e *tokenCacheEntry) {
	sh := c.shard(hash)
	e.cost += tokenCacheEntryOverhead
	if e.cost > sh.budget {
		return
	}
	// The token may be a slice of a larger string (a header value): keep
	// only its own bytes.
	e.token = strings.Clone(token)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.entries[hash]; old != nil {
		sh.bytes -= old.cost
		delete(sh.entries, hash)
	}
	for len(sh.entries) > 0 && (len(sh.entries) >= sh.max || sh.bytes+e.cost > sh.budget) {
		// Map iteration starts at a random slot: evict whatever is there.
		for h, victim := range sh.entries {
			sh.bytes -= victim.cost
			delete(sh.entries, h)
			break
		}
	}
	sh.entries[hash] = e
	sh.bytes += e.cost
}

// remove drops the entry of token, if it is still the cached one.
func (c *tokenCache) remove(hash uint64, token string) {
	sh := c.shard(hash)
	sh.mu.Lock()
	if e := sh.entries[hash]; e != nil && e.token == token {
		sh.bytes -= e.cost
		delete(sh.entries, hash)
	}
	sh.mu.Unlock()
}

// stats sums the shards' counters and sizes.
func (c *tokenCache) stats() (hits, misses uint64, size int) {
	for i := range c.shards {
		sh := &c.shards[i]
		hits += sh.hits.Load()
		misses += sh.misses.Load()
		sh.mu.RLock()
		size += len(sh.entries)
		sh.mu.RUnlock()
	}
	return hits, misses, size
}

// CacheStats reports the verified-token cache for metrics: lookups that
// found the token, lookups that did not, and the number of tokens cached
// now. All are zero when the cache is disabled.
func (v *Verifier) CacheStats() (hits, misses uint64, size int) {
	if v.cache == nil {
		return 0, 0, 0
	}
	return v.cache.stats()
}

// maxHeaders bounds the memo of decoded headers. Tokens signed by
// one key for one kind share their header, so a handful is the norm.
const maxHeaders = 64

// knownHeader returns the decoded header seg from the memo of headers of
// tokens that verified.
func (v *Verifier) knownHeader(seg string) (Header, bool) {
	if m := v.headers.Load(); m != nil {
		h, ok := (*m)[seg]
		return h, ok
	}
	return Header{}, false
}

// rememberHeader adds the header of a token that verified to the memo
// (copy on write: it changes once per key and kind). Headers of tokens that
// failed never enter it, so it cannot be flooded.
func (v *Verifier) rememberHeader(seg string, h Header) {
	for {
		old := v.headers.Load()
		var kept map[string]Header // a full memo starts afresh
		if old != nil && len(*old) < maxHeaders {
			kept = *old
		}
		next := make(map[string]Header, len(kept)+1)
		maps.Copy(next, kept)
		next[strings.Clone(seg)] = h
		if v.headers.CompareAndSwap(old, &next) {
			return
		}
	}
}

// failedSets and failedWays size the memo of tokens whose signature
// failed: 256 sets of 4 slots.
const (
	failedSets = 256
	failedWays = 4
)

// failedTokens remembers, in a fixed number of slots, the seeded hashes of
// tokens whose signature did not verify, so that a forged token sent
// again (a browser replays a planted cookie on every request) costs a hash
// instead of a signature check. A hash picks a set of four slots, so that
// a handful of forgeries (the cookies of one request) never push each
// other out; a full set overwrites one of its slots, chosen by the hash.
// Slots are never grown; a token is hashed whole, so a forgery that
// borrows a real token's signature never marks the real token. It takes
// no lock: a lost race forgets a forgery, which then costs one more
// signature check.
type failedTokens struct {
	seed  maphash.Seed
	slots [failedSets][failedWays]atomic.Uint64
}

func newFailedTokens() *failedTokens { return &failedTokens{seed: maphash.MakeSeed()} }

// hash is never zero, the value of an empty slot.
func (f *failedTokens) hash(token string) uint64 { return maphash.String(f.seed, token) | 1 }

func (f *failedTokens) has(token string) bool {
	h := f.hash(token)
	set := &f.slots[h%failedSets]
	for i := range set {
		if set[i].Load() == h {
			return true
		}
	}
	return false
}

func (f *failedTokens) add(token string) {
	h := f.hash(token)
	set := &f.slots[h%failedSets]
	for i := range set {
		switch set[i].Load() {
		case h:
			return
		case 0:
			if set[i].CompareAndSwap(0, h) {
				return
			}
		}
	}
	set[(h>>32)%failedWays].Store(h)
}
