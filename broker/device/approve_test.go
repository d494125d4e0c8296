package device_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/broker/device"
	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/broker/session"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/internal/testclock"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/memory"
)

const issuer = "https://auth.example.test"

// sessionTokens is a session.Verifier: a cookie value "tok-SID" is a
// session token of session SID.
type sessionTokens struct{}

func (sessionTokens) Verify(token string, kind claims.Kind) (*claims.Claims, error) {
	sid, ok := strings.CutPrefix(token, "tok-")
	if !ok || kind != claims.KindSession {
		return nil, errors.New("not a session token")
	}
	return &claims.Claims{SessionID: sid, PreferredUsername: "alice-" + sid}, nil
}

func (sessionTokens) Sign(claims.Kind, any) (string, error) { return "", errors.New("not used") }

// noGitHub is a session.IdentityReader the page never calls.
type noGitHub struct{}

func (noGitHub) FetchIdentity(context.Context, string, []string) (*github.Identity, error) {
	return nil, errors.New("not used")
}

// mux is the page.Router the handler mounts its routes on.
type mux struct{ *http.ServeMux }

func (m mux) Page(_, path string, h http.HandlerFunc, _ ...string) { m.Handle(path, h) }
func (m mux) API(_, path string, h http.Handler, _ ...string)      { m.Handle(path, h) }

// replica is one broker replica's device handler on a shared store.
type replica struct {
	t   *testing.T
	srv http.Handler
	h   *device.Handler
}

func newReplica(t *testing.T, st device.Store, clock *testclock.Clock, lim device.Limits) *replica {
	t.Helper()
	sessions, err := session.New(t.Context(), session.Config{
		Issuer: issuer, Signer: sessionTokens{}, Verifier: sessionTokens{}, Store: st.(session.Store), GitHub: noGitHub{}, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := device.New(t.Context(), device.Config{
		Issuer: issuer, Sessions: sessions, Store: st, Limits: lim, Now: clock.Now,
		Clients: []device.Client{{ID: "cli", Public: true, GrantTypes: []string{"device_code"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := mux{http.NewServeMux()}
	h.Mount(m)
	return &replica{t: t, srv: m, h: h}
}

// enter enters code on the /device page as session sid.
func (r *replica) enter(sid, code string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/device?"+url.Values{"user_code": {code}}.Encode(), nil)
	req.Header.Set("Cookie", "_ghbroker=tok-"+sid)
	rec := httptest.NewRecorder()
	r.srv.ServeHTTP(rec, req)
	return rec
}

// start asks the handler for a code, as a command line would.
func (r *replica) start() string {
	r.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/device/code", strings.NewReader("client_id=cli&scope=openid"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	r.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		r.t.Fatalf("/device/code = %d %s", rec.Code, rec.Body)
	}
	var out struct {
		UserCode string `json:"user_code"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.UserCode == "" {
		r.t.Fatalf("no user_code in %s (%v)", rec.Body, err)
	}
	return out.UserCode
}

// wrongCode returns a well-formed code other than right.
func wrongCode(i int, right string) string {
	const letters = device.Alphabet
	c := fmt.Sprintf("BCDF%c%c%c%c", letters[i%20], letters[i/20%20], letters[i/400%20], letters[i/8000%20])
	if c == strings.ReplaceAll(right, "-", "") {
		c = "ZZZZ" + c[4:]
	}
	return c
}

// want checks an answer's status and that its page says what it should.
func want(t *testing.T, what string, rec *httptest.ResponseRecorder, status int, says string) {
	t.Helper()
	if rec.Code != status || !strings.Contains(rec.Body.String(), says) {
		t.Fatalf("%s = %d, want %d saying %q:\n%s", what, rec.Code, status, says, rec.Body)
	}
}

// aligned is a clock reading on a whole minute, so that a test knows
// where the deployment's windows begin.
func aligned() *testclock.Clock {
	return testclock.New(time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC))
}

// roomy leaves the in-memory buckets out of the way.
var roomy = device.Limits{SessionBurst: 1000, SessionRefill: time.Second, GlobalBurst: 1000, GlobalRefill: time.Second}

// TestDeploymentBudgetAcrossReplicas: two replicas on one store spend one
// budget of wrong codes between them, whichever replica and session
// enters them; over it every entry is refused, even a right code, until
// the next window.
func TestDeploymentBudgetAcrossReplicas(t *testing.T) {
	clock := aligned()
	st := memory.New(memory.Options{Now: clock.Now})
	lim := roomy
	lim.DeploymentLimit, lim.DeploymentWindow = 6, time.Minute
	a, b := newReplica(t, st, clock, lim), newReplica(t, st, clock, lim)
	right := a.start()

	// A right code spends nothing, on either replica.
	for i := range 10 {
		want(t, "right code", []*replica{a, b}[i%2].enter("s0", right), http.StatusOK, "Approve")
	}
	for i := range 6 {
		r, sid := []*replica{a, b}[i%2], fmt.Sprintf("s%d", i%3)
		want(t, fmt.Sprintf("wrong code %d", i), r.enter(sid, wrongCode(i, right)), http.StatusNotFound, "No sign-in request has that code")
	}
	clock.Advance(20 * time.Second)
	for _, r := range []*replica{a, b} {
		rec := r.enter("fresh", wrongCode(99, right))
		want(t, "wrong code past the deployment's budget", rec, http.StatusTooManyRequests, "by everyone together")
		if got := rec.Header().Get("Retry-After"); got != "40" {
			t.Errorf("Retry-After = %q, want 40 (the window's end)", got)
		}
		want(t, "right code past the deployment's budget", r.enter("s0", right), http.StatusTooManyRequests, "Too many wrong codes")
	}
	clock.Advance(40 * time.Second) // the next window
	want(t, "right code in the next window", b.enter("s0", right), http.StatusOK, "Approve")
	want(t, "wrong code in the next window", b.enter("s1", wrongCode(7, right)), http.StatusNotFound, "No sign-in request")
}

// TestDeploymentBudgetConcurrent: many entries at once on two replicas
// are looked up only as far as the budget goes: exactly the limit are
// answered "wrong", every other is refused before its lookup.
func TestDeploymentBudgetConcurrent(t *testing.T) {
	clock := aligned()
	st := memory.New(memory.Options{Now: clock.Now})
	lim := roomy
	lim.DeploymentLimit, lim.DeploymentWindow = 7, time.Minute
	rs := []*replica{newReplica(t, st, clock, lim), newReplica(t, st, clock, lim)}
	right := rs[0].start()
	var wrong, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			switch rec := rs[i%2].enter(fmt.Sprintf("s%d", i%5), wrongCode(i, right)); rec.Code {
			case http.StatusNotFound:
				wrong.Add(1)
			case http.StatusTooManyRequests:
				refused.Add(1)
			default:
				t.Errorf("entry %d = %d", i, rec.Code)
			}
		})
	}
	wg.Wait()
	if wrong.Load() != 7 || refused.Load() != 53 {
		t.Errorf("60 wrong entries at once: %d answered, %d refused; want 7 and 53", wrong.Load(), refused.Load())
	}
}

// gatedStore holds every user-code lookup until release is closed, and
// counts the lookups and the counter calls.
type gatedStore struct {
	*memory.Store
	lookups, counts atomic.Int32
	release         chan struct{}
}

func (g *gatedStore) GetDeviceCodeByUserCode(ctx context.Context, code string) (store.DeviceCode, error) {
	g.lookups.Add(1)
	<-g.release
	return g.Store.GetDeviceCodeByUserCode(ctx, code)
}

func (g *gatedStore) AddToCounter(ctx context.Context, id string, delta, limit int, expires time.Time) (int, bool, error) {
	g.counts.Add(1)
	return g.Store.AddToCounter(ctx, id, delta, limit, expires)
}

// TestSessionBucketStillApplies: one session gets its own burst of wrong
// codes and no more, even when its entries arrive at once; an entry over
// its bucket costs no store call; another session is not held back.
func TestSessionBucketStillApplies(t *testing.T) {
	clock := aligned()
	st := &gatedStore{Store: memory.New(memory.Options{Now: clock.Now}), release: make(chan struct{})}
	lim := device.Limits{SessionBurst: 3, SessionRefill: time.Minute, GlobalBurst: 100, GlobalRefill: time.Second, DeploymentLimit: 100, DeploymentWindow: time.Minute}
	r := newReplica(t, st, clock, lim)

	// Twenty entries of one session at once: the lookups are held until
	// every entry is either in one or answered, so that an entry let
	// through without spending first would show.
	const n = 20
	codes := make(chan int, n)
	for i := range n {
		go func() { codes <- r.enter("s1", wrongCode(i, "")).Code }()
	}
	answered, got := map[int]int{}, 0
	deadline := time.After(10 * time.Second)
	for int(st.lookups.Load())+got < n {
		select {
		case c := <-codes:
			answered[c]++
			got++
		case <-deadline:
			t.Fatalf("entries stuck: %d lookups, answers %v", st.lookups.Load(), answered)
		case <-time.After(time.Millisecond):
		}
	}
	close(st.release)
	for ; got < n; got++ {
		answered[<-codes]++
	}
	if answered[http.StatusNotFound] != 3 || answered[http.StatusTooManyRequests] != n-3 || st.lookups.Load() != 3 {
		t.Fatalf("%d wrong entries at once from one session: answers %v after %d lookups; want 3 × 404, %d × 429, 3 lookups", n, answered, st.lookups.Load(), n-3)
	}

	before := st.counts.Load()
	rec := r.enter("s1", wrongCode(50, ""))
	want(t, "over the session's budget", rec, http.StatusTooManyRequests, "Wait a few minutes")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After over the session's budget")
	}
	if got := st.counts.Load(); got != before {
		t.Errorf("an entry over the session's budget made %d counter calls, want none", got-before)
	}
	want(t, "another session", r.enter("s2", wrongCode(51, "")), http.StatusNotFound, "No sign-in request")
	clock.Advance(time.Minute)
	want(t, "after one refill", r.enter("s1", wrongCode(52, "")), http.StatusNotFound, "No sign-in request")
	want(t, "after spending it", r.enter("s1", wrongCode(53, "")), http.StatusTooManyRequests, "Wait a few minutes")
}

// failingStore fails counter calls or lookups on demand.
type failingStore struct {
	*memory.Store
	failCount, failLookup atomic.Bool
}

func (f *failingStore) AddToCounter(ctx context.Context, id string, delta, limit int, expires time.Time) (int, bool, error) {
	if f.failCount.Load() {
		return 0, false, fmt.Errorf("store/test: add to counter: %w: no quorum", store.ErrUnavailable)
	}
	return f.Store.AddToCounter(ctx, id, delta, limit, expires)
}

func (f *failingStore) GetDeviceCodeByUserCode(ctx context.Context, code string) (store.DeviceCode, error) {
	if f.failLookup.Load() {
		return store.DeviceCode{}, errors.New("store/test: decode record: unexpected end of JSON input")
	}
	return f.Store.GetDeviceCodeByUserCode(ctx, code)
}

// TestStoreFailureRefusesClearly: when the store cannot count or look an
// entry up, the page refuses it with 503, Retry-After and a sentence for
// people (never a 500, never the store's error), and the session's budget
// is not spent by entries that were never answered.
func TestStoreFailureRefusesClearly(t *testing.T) {
	clock := aligned()
	st := &failingStore{Store: memory.New(memory.Options{Now: clock.Now})}
	lim := device.Limits{SessionBurst: 2, SessionRefill: time.Hour, GlobalBurst: 100, GlobalRefill: time.Second, DeploymentLimit: 100, DeploymentWindow: time.Minute}
	r := newReplica(t, st, clock, lim)
	right := r.start()
	for name, fail := range map[string]*atomic.Bool{"counting": &st.failCount, "looking up": &st.failLookup} {
		fail.Store(true)
		for _, code := range []string{right, wrongCode(1, right), wrongCode(2, right), wrongCode(3, right)} {
			rec := r.enter("s1", code)
			want(t, "entry while "+name+" fails", rec, http.StatusServiceUnavailable, "cannot check codes right now")
			if rec.Header().Get("Retry-After") == "" {
				t.Errorf("%s fails: no Retry-After", name)
			}
			for _, leak := range []string{"quorum", "JSON", "store/"} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("%s fails: the page shows %q:\n%s", name, leak, rec.Body)
				}
			}
		}
		fail.Store(false)
	}
	// Eight refused entries later the session still has its burst of 2.
	want(t, "right code once the store is back", r.enter("s1", right), http.StatusOK, "Approve")
	want(t, "wrong code once the store is back", r.enter("s1", wrongCode(4, right)), http.StatusNotFound, "No sign-in request")
	want(t, "wrong code once the store is back", r.enter("s1", wrongCode(5, right)), http.StatusNotFound, "No sign-in request")
	want(t, "third wrong code", r.enter("s1", wrongCode(6, right)), http.StatusTooManyRequests, "Too many wrong codes")
}

// TestDeviceCodeFloodBounded: /device/code needs no one signed in and
// writes a record that lives ten minutes; a flood of it is refused with
// 429 and Retry-After once the replica's bucket is empty, writing
// nothing, and codes flow again as the bucket refills.
func TestDeviceCodeFloodBounded(t *testing.T) {
	clock := aligned()
	st := &countingCreates{Store: memory.New(memory.Options{Now: clock.Now})}
	r := newReplica(t, st, clock, device.Limits{CodeBurst: 3, CodeRefill: time.Second})
	post := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/device/code", strings.NewReader("client_id=cli&scope=openid"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		r.srv.ServeHTTP(rec, req)
		return rec
	}
	for i := range 3 {
		if rec := post(); rec.Code != http.StatusOK {
			t.Fatalf("code %d of the burst: %d %s", i+1, rec.Code, rec.Body)
		}
	}
	for range 50 {
		rec := post()
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" ||
			!strings.Contains(rec.Body.String(), `"temporarily_unavailable"`) {
			t.Fatalf("past the burst: %d Retry-After %q %s, want 429 temporarily_unavailable with Retry-After",
				rec.Code, rec.Header().Get("Retry-After"), rec.Body)
		}
	}
	if n := st.creates.Load(); n != 3 {
		t.Errorf("the flood wrote %d device codes, want the burst's 3", n)
	}
	clock.Advance(time.Second)
	if rec := post(); rec.Code != http.StatusOK {
		t.Errorf("a second later: %d, want a new code", rec.Code)
	}
}

// countingCreates counts the device codes written.
type countingCreates struct {
	*memory.Store
	creates atomic.Int64
}

func (c *countingCreates) CreateDeviceCode(ctx context.Context, d store.DeviceCode) error {
	c.creates.Add(1)
	return c.Store.CreateDeviceCode(ctx, d)
}
