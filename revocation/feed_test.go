package revocation

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/store/memory"
)

const feedIssuer = "https://auth.example.test"

type feedWorld struct {
	keys     *keys.Manager
	set      *Set
	srv      *httptest.Server
	follower *Follower
	// tamper, when set, rewrites every answer on its way to the replica.
	mu     sync.Mutex
	tamper func(string) string
}

func newFeedWorld(t *testing.T) *feedWorld {
	t.Helper()
	st := memory.New(memory.Options{})
	km, err := keys.NewManager(context.Background(), st, keys.Options{Algorithm: keys.ES256})
	if err != nil {
		t.Fatal(err)
	}
	w := &feedWorld{keys: km, set: New(Options{})}
	pub := &Publisher{Issuer: feedIssuer, Set: w.set, Signer: km}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		pub.ServeHTTP(rec, r)
		body := rec.Body.String()
		w.mu.Lock()
		if w.tamper != nil {
			body = w.tamper(body)
		}
		w.mu.Unlock()
		rw.WriteHeader(rec.Code)
		_, _ = io.WriteString(rw, body)
	}))
	t.Cleanup(w.srv.Close)
	w.follower = &Follower{URL: w.srv.URL + "/revocations", Issuer: feedIssuer, Keys: km, Set: New(Options{})}
	return w
}

func (w *feedWorld) setTamper(f func(string) string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tamper = f
}

func TestFeedCarriesRevocations(t *testing.T) {
	w := newFeedWorld(t)
	ctx := context.Background()
	exp := Millis(time.Now().Add(time.Hour))
	w.set.Add(Entry{Subject: "1001", Before: 500, Expires: exp})
	if err := w.follower.Fetch(ctx, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.follower.Ready():
	default:
		t.Error("not ready after the first feed")
	}
	if !w.follower.Set.Revoked("1001", "", 499) || w.follower.Set.Cursor() != 1 {
		t.Fatalf("the replica did not learn the revocation (cursor %d)", w.follower.Set.Cursor())
	}
	// A long poll answers as soon as there is news.
	done := make(chan error, 1)
	go func() { done <- w.follower.Fetch(ctx, 20*time.Second) }()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	w.set.Add(Entry{Session: "s1", Expires: exp})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second || !w.follower.Set.Revoked("", "s1", 0) {
		t.Errorf("the long poll took %s, session revoked %v", took, w.follower.Set.Revoked("", "s1", 0))
	}
}

// TestFeedRefusesTampering: a feed changed in transit, signed by another
// key, from another issuer, or replayed from before, changes nothing.
func TestFeedRefusesTampering(t *testing.T) {
	w := newFeedWorld(t)
	ctx := context.Background()
	exp := Millis(time.Now().Add(time.Hour))
	w.set.Add(Entry{Subject: "1001", Before: 500, Expires: exp})
	var recorded string
	w.setTamper(func(s string) string { recorded = s; return s })
	if err := w.follower.Fetch(ctx, 0); err != nil {
		t.Fatal(err)
	}
	w.setTamper(func(s string) string {
		parts := strings.Split(s, ".")
		parts[1] = parts[1][:len(parts[1])-4] + "AAAA"
		return strings.Join(parts, ".")
	})
	w.set.Add(Entry{Subject: "1002", Before: 500, Expires: exp})
	if err := w.follower.Fetch(ctx, 0); err != ErrFeedSignature {
		t.Errorf("a payload changed in transit: %v", err)
	}
	// Replaying the first (validly signed) feed is refused: an old feed
	// must never stand in for a newer one.
	w.setTamper(nil)
	if err := w.follower.Fetch(ctx, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // the recorded feed is now strictly older
	w.setTamper(nil)
	if err := w.follower.Fetch(ctx, 0); err != nil {
		t.Fatal(err)
	}
	w.setTamper(func(string) string { return recorded })
	if err := w.follower.Fetch(ctx, 0); err != ErrFeedReplay {
		t.Errorf("a replayed feed: %v", err)
	}
	if !w.follower.Set.Revoked("1002", "", 1) {
		t.Error("a replay undid a revocation")
	}
	other := &Follower{URL: w.follower.URL, Issuer: "https://other.example.test", Keys: w.keys, Set: New(Options{})}
	w.setTamper(nil)
	if err := other.Fetch(ctx, 0); err != ErrFeedIssuer {
		t.Errorf("a feed for another issuer: %v", err)
	}
	st := memory.New(memory.Options{})
	stranger, _ := keys.NewManager(ctx, st, keys.Options{Algorithm: keys.ES256})
	foreign := &Follower{URL: w.follower.URL, Issuer: feedIssuer, Keys: stranger, Set: New(Options{})}
	if err := foreign.Fetch(ctx, 0); err != ErrFeedSignature {
		t.Errorf("a feed under keys the replica does not hold: %v", err)
	}
}

// TestFeedFromAnotherReplica: broker replicas behind one Service number
// their sets apart; a follower that reaches another one gets its whole set
// instead of entries after a cursor that means nothing there.
func TestFeedFromAnotherReplica(t *testing.T) {
	a := newFeedWorld(t)
	ctx := context.Background()
	exp := Millis(time.Now().Add(time.Hour))
	a.set.Add(Entry{Subject: "1001", Before: 500, Expires: exp})
	a.set.Add(Entry{Subject: "1002", Before: 500, Expires: exp})
	if err := a.follower.Fetch(ctx, 0); err != nil {
		t.Fatal(err)
	}
	other := New(Options{})
	other.Add(Entry{Session: "s9", Expires: exp}) // the same revocations, numbered apart, plus its own
	other.Add(Entry{Subject: "1001", Before: 500, Expires: exp})
	other.Add(Entry{Subject: "1002", Before: 500, Expires: exp})
	pub := &Publisher{Issuer: feedIssuer, Set: other, Signer: a.keys}
	srv := httptest.NewServer(pub)
	defer srv.Close()
	time.Sleep(2 * time.Millisecond)
	a.follower.URL = srv.URL + "/revocations"
	if err := a.follower.Fetch(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if !a.follower.Set.Revoked("", "s9", 0) || !a.follower.Set.Revoked("1002", "", 1) || a.follower.Set.Cursor() != 3 {
		t.Errorf("after switching replicas: s9 %v, 1002 %v, cursor %d", a.follower.Set.Revoked("", "s9", 0),
			a.follower.Set.Revoked("1002", "", 1), a.follower.Set.Cursor())
	}
}
