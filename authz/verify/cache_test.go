package verify

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/keys"
)

func TestVerifyCacheHit(t *testing.T) {
	e := vtNewEnv(t, keys.ES256)
	v := e.verifier(t, Options{})
	tok := e.sign(t, claims.KindSession, e.claims(claims.KindSession))
	first, err := v.Verify(tok, claims.KindSession)
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the token in another string, as a new request brings it.
	again, err := v.Verify(strings.Clone(tok), claims.KindSession)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Error("a cache hit returned other claims")
	}
	if hits, misses, size := v.CacheStats(); hits != 1 || misses != 1 || size != 1 {
		t.Errorf("stats = %d hits, %d misses, %d cached; want 1, 1, 1", hits, misses, size)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		if _, err := v.Verify(tok, claims.KindSession); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("a cache hit allocates %v times", allocs)
	}
}

func TestVerifyCacheDisabled(t *testing.T) {
	e := vtNewEnv(t, keys.EdDSA)
	v := e.verifier(t, Options{CacheSize: -1})
	tok := e.sign(t, claims.KindSession, e.claims(claims.KindSession))
	a, err := v.Verify(tok, claims.KindSession)
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.Verify(tok, claims.KindSession)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("claims shared although the cache is disabled")
	}
	if hits, misses, size := v.CacheStats(); hits+misses != 0 || size != 0 {
		t.Errorf("stats of a disabled cache = %d, %d, %d", hits, misses, size)
	}
}

// TestVerifyCacheExpiry: an entry is never served past its exp (plus the
// leeway), by the verifier's clock.
func TestVerifyCacheExpiry(t *testing.T) {
	e := vtNewEnv(t, keys.EdDSA)
	v := e.verifier(t, Options{})
	c := e.claims(claims.KindSession)
	c.Expiry = jwt.NewNumericDate(e.clk.Now().Add(time.Minute))
	tok := e.sign(t, claims.KindSession, c)
	if _, err := v.Verify(tok, claims.KindSession); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute + defaultLeeway)
	if _, err := v.Verify(tok, claims.KindSession); err != nil {
		t.Fatalf("refused at exp+leeway: %v", err)
	}
	if hits, _, _ := v.CacheStats(); hits != 1 {
		t.Fatalf("%d hits, want 1", hits)
	}
	e.clk.Advance(time.Second)
	_, err := v.Verify(tok, claims.KindSession)
	vtCheckErr(t, tok, err, ErrExpired)
	if _, _, size := v.CacheStats(); size != 0 {
		t.Errorf("expired entry kept: size %d", size)
	}
}

// TestVerifyCacheNotBefore: a clock that steps back is honoured too.
func TestVerifyCacheNotBefore(t *testing.T) {
	e := vtNewEnv(t, keys.EdDSA)
	v := e.verifier(t, Options{})
	tok := e.sign(t, claims.KindSession, e.claims(claims.KindSession)) // nbf = iat = now
	if _, err := v.Verify(tok, claims.KindSession); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(-time.Minute)
	_, err := v.Verify(tok, claims.KindSession)
	vtCheckErr(t, tok, err, ErrNotYetValid)
	e.clk.Advance(time.Minute)
	if _, err := v.Verify(tok, claims.KindSession); err != nil {
		t.Fatal(err)
	}
	if hits, _, _ := v.CacheStats(); hits != 2 {
		t.Errorf("%d hits, want 2: the entry must stay", hits)
	}
}

// TestVerifyCacheKind: a cached token is still only good as its own kind.
func TestVerifyCacheKind(t *testing.T) {
	e := vtNewEnv(t, keys.EdDSA)
	v := e.verifier(t, Options{IDTokenAudiences: []string{"grafana"}})
	for _, kind := range []claims.Kind{claims.KindSession, claims.KindAccess, claims.KindID} {
		tok := e.sign(t, kind, e.claims(kind))
		if _, err := v.Verify(tok, kind); err != nil {
			t.Fatal(err)
		}
		for _, other := range []claims.Kind{claims.KindSession, claims.KindAccess, claims.KindID, "other"} {
			if other == kind {
				continue
			}
			_, err := v.Verify(tok, other)
			vtCheckErr(t, tok, err, ErrType)
		}
		if _, err := v.Verify(tok, kind); err != nil {
			t.Fatalf("%s refused after the kind mix-ups: %v", kind, err)
		}
	}
}

// TestVerifyCacheKeyRemoved: once its key leaves the key set, a cached
// token is refused at once.
func TestVerifyCacheKeyRemoved(t *testing.T) {
	t.Run("key set", func(t *testing.T) {
		e := vtNewEnv(t, keys.EdDSA)
		_, kid := e.current(t)
		pub, _ := e.m.PublicKey(kid)
		ks := &vtMapKeySet{}
		ks.set(pub)
		v := e.verifier(t, Options{Keys: ks})
		tok := e.sign(t, claims.KindSession, e.claims(claims.KindSession))
		if _, err := v.Verify(tok, claims.KindSession); err != nil {
			t.Fatal(err)
		}
		ks.remove(kid)
		_, err := v.Verify(tok, claims.KindSession)
		vtCheckErr(t, tok, err, ErrUnknownKey)
		if _, _, size := v.CacheStats(); size != 0 {
			t.Errorf("entry of a removed key kept: size %d", size)
		}
		ks.set(pub)
		if _, err := v.Verify(tok, claims.KindSession); err != nil {
			t.Fatalf("refused once the key is back: %v", err)
		}
	})
	t.Run("rotation retires the key", func(t *testing.T) {
		ctx := context.Background()
		e := vtNewEnv(t, keys.EdDSA) // MaxTokenLifetime 2h
		v := e.verifier(t, Options{})
		c := e.claims(claims.KindSession)
		c.Expiry = jwt.NewNumericDate(e.clk.Now().Add(4 * time.Hour)) // longer than the manager allows
		tok := e.sign(t, claims.KindSession, c)
		if _, err := v.Verify(tok, claims.KindSession); err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.Rotate(ctx, true); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(tok, claims.KindSession); err != nil {
			t.Fatalf("refused while its key is a published previous key: %v", err)
		}
		e.clk.Advance(2*time.Hour + 2*time.Minute)
		if _, err := e.m.Rotate(ctx, false); err != nil {
			t.Fatal(err)
		}
		_, err := v.Verify(tok, claims.KindSession)
		vtCheckErr(t, tok, err, ErrUnknownKey)
	})
}

// TestVerifyCacheBounded: with ten times more distinct tokens than entries,
// the cache never holds more than its maximum.
func TestVerifyCacheBounded(t *testing.T) {
	e := vtNewEnv(t, keys.EdDSA)
	toks := make([]string, 500)
	for i := range toks {
		c := e.claims(claims.KindSession)
		c.ID = fmt.Sprint(i)
		toks[i] = e.sign(t, claims.KindSession, c)
	}
	for _, max := range []int{1, 3, 7, 50} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			v := e.verifier(t, Options{CacheSize: max})
			for _, tok := range toks[:10*max] {
				if _, err := v.Verify(tok, claims.KindSession); err != nil {
					t.Fatal(err)
				}
				if _, _, size := v.CacheStats(); size > max {
					t.Fatalf("%d entries cached, max %d", size, max)
				}
			}
			if _, _, size := v.CacheStats(); size == 0 {
				t.Error("nothing cached")
			}
			for _, tok := range toks[:10*max] {
				if _, err := v.Verify(tok, claims.KindSession); err != nil {
					t.Fatalf("an evicted token is refused: %v", err)
				}
			}
		})
	}
}

// TestTokenCacheBudget: large entries evict others to stay within the
// byte budget, and an entry larger than a shard's budget is not kept.
func TestTokenCacheBudget(t *testing.T) {
	c := newTokenCache(8) // 8 shards of one entry each
	for i := range 100 {
		tok := fmt.Sprintf("token-%d", i)
		h, _ := c.get(tok)
		c.put(h, tok, &tokenCacheEntry{cost: i * 100})
		for j := range c.shards {
			sh := &c.shards[j]
			if len(sh.entries) > sh.max || sh.bytes > sh.budget {
				t.Fatalf("shard %d: %d entries, %d bytes; max %d, %d", j, len(sh.entries), sh.bytes, sh.max, sh.budget)
			}
		}
	}
	tok := "huge"
	h, _ := c.get(tok)
	c.put(h, tok, &tokenCacheEntry{cost: tokenCacheBytesPerEntry})
	if _, e := c.get(tok); e != nil {
		t.Error("an entry over the shard budget was cached")
	}
}

// TestTokenCacheCollision: an entry is served only for its own token, even
// when another token's hash leads to it.
func TestTokenCacheCollision(t *testing.T) {
	c := newTokenCache(16)
	h := maphash.String(c.seed, "token-a")
	c.put(h, "token-b", &tokenCacheEntry{}) // as if token-b hashed like token-a
	if _, e := c.get("token-a"); e != nil {
		t.Fatal("a colliding token was served another token's entry")
	}
	c.remove(h, "token-a")
	if _, _, size := c.stats(); size != 1 {
		t.Error("remove dropped another token's entry")
	}

	// Tokens that share their hashed tail share a slot, nothing more.
	tail := strings.Repeat("s", tokenCacheHashedTail)
	a, b := "header-a."+tail, "header-b."+tail
	ha, _ := c.get(a)
	c.put(ha, a, &tokenCacheEntry{})
	hb, e := c.get(b)
	if hb != ha || e != nil {
		t.Fatalf("same tail: slots %x, %x; entry %v", ha, hb, e)
	}
	if _, e := c.get(a); e == nil {
		t.Error("the cached token is no longer served")
	}
}

// TestVerifyCacheConcurrent hammers a small cache from many goroutines
// with valid and invalid tokens of every kind while the clock moves and a
// key comes and goes: run it with -race.
func TestVerifyCacheConcurrent(t *testing.T) {
	e := vtNewEnv(t, keys.EdDSA)
	_, kid := e.current(t)
	pub, _ := e.m.PublicKey(kid)
	ks := &vtMapKeySet{}
	ks.set(pub)
	const max = 16
	v := e.verifier(t, Options{Keys: ks, CacheSize: max, IDTokenAudiences: []string{"grafana"}})

	type tc struct {
		tok  string
		kind claims.Kind
		want error
	}
	var cases []tc
	for i := range 24 {
		kind := []claims.Kind{claims.KindSession, claims.KindAccess, claims.KindID}[i%3]
		c := e.claims(kind)
		c.ID = fmt.Sprint(i)
		tok := e.sign(t, kind, c)
		cases = append(cases, tc{tok, kind, nil})
		if kind != claims.KindSession && i%4 < 2 {
			cases = append(cases, tc{tok, claims.KindSession, ErrType}, tc{tok + ".", kind, ErrMalformed})
		}
	}
	expired := e.claims(claims.KindSession)
	expired.Expiry = jwt.NewNumericDate(e.clk.Now().Add(-time.Hour))
	cases = append(cases, tc{e.sign(t, claims.KindSession, expired), claims.KindSession, ErrExpired})

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { // the clock moves, but not so far that a valid token expires
		for range 30 * 60 * 1000 {
			select {
			case <-stop:
				return
			default:
				e.clk.Advance(time.Millisecond)
			}
		}
	})
	var keyGone sync.RWMutex // held for writing while the key is out of the set
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			keyGone.Lock()
			ks.remove(kid)
			if _, err := v.Verify(cases[0].tok, cases[0].kind); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("with the key removed: %v", err)
			}
			ks.set(pub)
			keyGone.Unlock()
		}
	})
	const workers, rounds = 8, 1000
	var checkers sync.WaitGroup
	for w := range workers {
		checkers.Go(func() {
			for i := range rounds {
				tc := cases[(i*7+w)%len(cases)]
				keyGone.RLock()
				c, err := v.Verify(tc.tok, tc.kind)
				keyGone.RUnlock()
				switch {
				case tc.want == nil && (err != nil || c == nil):
					t.Errorf("valid %s token refused: %v", tc.kind, err)
					return
				case tc.want != nil && !errors.Is(err, tc.want):
					t.Errorf("got %v, want %v", err, tc.want)
					return
				}
			}
		})
	}
	checkers.Wait()
	close(stop)
	wg.Wait()
	hits, misses, size := v.CacheStats()
	if size > max {
		t.Errorf("%d entries cached, max %d", size, max)
	}
	t.Logf("%d hits, %d misses, %d cached", hits, misses, size)
}

// TestVerifyRemembersFailedSignatures: a token whose signature failed is
// refused again without another signature check, a forgery borrowing a
// real token's signature never marks the real one, and Precheck picks
// out what is worth a signature check.
func TestVerifyRemembersFailedSignatures(t *testing.T) {
	e := vtNewEnv(t, "ES256")
	v := e.verifier(t, Options{})
	good := e.sign(t, claims.KindSession, e.claims(claims.KindSession))
	dot := strings.LastIndexByte(good, '.')
	forged := good[:dot+1] + strings.Repeat("A", len(good)-dot-1)

	if cached, err := v.Precheck(forged, claims.KindSession); cached || err != nil {
		t.Fatalf("Precheck(forged) = %v, %v; want false, nil (it passes every cheap check)", cached, err)
	}
	if n := v.SignatureChecks(); n != 0 {
		t.Fatalf("Precheck checked %d signatures", n)
	}
	vtCheckErr(t, forged, vtErr(v.Verify(forged, claims.KindSession)), ErrSignature)
	if n := v.SignatureChecks(); n != 1 {
		t.Fatalf("%d signature checks, want 1", n)
	}
	vtCheckErr(t, forged, vtErr(v.Verify(forged, claims.KindSession)), ErrSignature)
	if _, err := v.Precheck(forged, claims.KindSession); !errors.Is(err, ErrSignature) {
		t.Errorf("Precheck(forged once failed) = %v, want ErrSignature", err)
	}
	if n := v.SignatureChecks(); n != 1 {
		t.Errorf("a failed forgery sent again cost a signature check (%d in all)", n)
	}

	// The real token shares the forgery's header and payload: unaffected.
	if _, err := v.Verify(good, claims.KindSession); err != nil {
		t.Fatalf("real token after its forgery failed: %v", err)
	}
	if cached, err := v.Precheck(good, claims.KindSession); !cached || err != nil {
		t.Errorf("Precheck(verified) = %v, %v; want true, nil", cached, err)
	}
	if _, err := v.Precheck(good, claims.KindAccess); !errors.Is(err, ErrType) {
		t.Errorf("Precheck as another kind = %v, want ErrType", err)
	}
	expired := e.claims(claims.KindSession)
	expired.Expiry = jwt.NewNumericDate(e.clk.Now().Add(-time.Hour))
	if _, err := v.Precheck(e.sign(t, claims.KindSession, expired), claims.KindSession); !errors.Is(err, ErrExpired) {
		t.Errorf("Precheck(expired) = %v, want ErrExpired", err)
	}
	if n := v.SignatureChecks(); n != 2 {
		t.Errorf("%d signature checks, want 2", n)
	}
}

// TestFailedTokensBounded: the memo of failures has a fixed size.
func TestFailedTokensBounded(t *testing.T) {
	f := newFailedTokens()
	for i := range 100 * failedSets * failedWays {
		f.add(fmt.Sprint("forged-", i))
	}
	if f.has("never-added") {
		t.Error("a token never added is remembered")
	}
	f.add("last")
	if !f.has("last") {
		t.Error("the last failure is forgotten")
	}
}

// TestFailedTokensSet: a set holds four failures whose hashes pick it
// (the forged cookies of one request), and a fifth pushes out one.
func TestFailedTokensSet(t *testing.T) {
	f := newFailedTokens()
	var same []string
	first := f.hash("a") % failedSets
	for i := 0; len(same) < failedWays+1; i++ {
		if tok := fmt.Sprint("forged-", i); f.hash(tok)%failedSets == first {
			same = append(same, tok)
		}
	}
	for _, tok := range same[:failedWays] {
		f.add(tok)
	}
	for _, tok := range same[:failedWays] {
		if !f.has(tok) {
			t.Errorf("%s forgotten with %d failures in its set", tok, failedWays)
		}
	}
	f.add(same[failedWays])
	kept := 0
	for _, tok := range same {
		if f.has(tok) {
			kept++
		}
	}
	if !f.has(same[failedWays]) || kept != failedWays {
		t.Errorf("after a fifth failure in a full set: the fifth remembered %v, %d of 5 remembered, want true and %d",
			f.has(same[failedWays]), kept, failedWays)
	}
}

func vtErr(_ *claims.Claims, err error) error { return err }

// TestVerifyAt: a cached token is checked against the door's clock
// reading on the real clock, and against the Verifier's own clock when it
// has one.
func TestVerifyAt(t *testing.T) {
	e := vtNewEnv(t, keys.EdDSA)
	real, err := New(Options{Issuer: vtIssuer, Keys: e.m})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := e.claims(claims.KindSession)
	c.IssuedAt, c.NotBefore = jwt.NewNumericDate(now.Add(-time.Minute)), nil
	c.Expiry = jwt.NewNumericDate(now.Add(time.Hour))
	tok := e.sign(t, claims.KindSession, c)
	if _, err := real.VerifyAt(tok, claims.KindSession, now); err != nil {
		t.Fatal(err)
	}
	if _, err := real.VerifyAt(tok, claims.KindSession, now.Add(2*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Errorf("cached, at a reading past its expiry: %v, want ErrExpired", err)
	}

	own := e.verifier(t, Options{}) // the test clock
	tok = e.sign(t, claims.KindSession, e.claims(claims.KindSession))
	if _, err := own.Verify(tok, claims.KindSession); err != nil {
		t.Fatal(err)
	}
	if _, err := own.VerifyAt(tok, claims.KindSession, e.clk.Now().Add(48*time.Hour)); err != nil {
		t.Errorf("a Verifier with its own clock followed the caller's reading: %v", err)
	}
}

// An empty cache holds little memory, whatever its size: the garbage
// collector scans every table the process holds at each cycle, so a table
// sized for entries that never come costs every check.
func TestTokenCacheEmptyIsSmall(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c := newTokenCache(defaultCacheSize)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Fatalf("an empty cache of %d entries allocated %d KiB", defaultCacheSize, got>>10)
	}
	// It still takes its entries.
	for i := range 1000 {
		tok := fmt.Sprintf("eyJ.p.sig%d", i)
		h, _ := c.get(tok)
		c.put(h, tok, &tokenCacheEntry{})
	}
	if _, _, n := c.stats(); n != 1000 {
		t.Fatalf("cache holds %d of 1000 entries", n)
	}
}
