package broker_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/etcd"
	"github.com/ghbroker/ghbroker/store/etcd/etcdtest"
	"github.com/ghbroker/ghbroker/store/memory"
)

// engines are the store engines the race tests run on: memory, and etcd
// on an embedded server (the engine replicas share).
func engines() map[string]func(t testing.TB, now func() time.Time) store.Store {
	return map[string]func(t testing.TB, now func() time.Time) store.Store{
		"memory": func(_ testing.TB, now func() time.Time) store.Store { return newMemoryStore(now) },
		"etcd": func(t testing.TB, now func() time.Time) store.Store {
			srv := etcdtest.Start(t)
			st, err := etcd.Open(context.Background(), etcd.Options{Endpoints: srv.Endpoints(), Now: now, MonitorEvery: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
}

// tokenAnswer is one /token response.
type tokenAnswer struct {
	status int
	body   map[string]any
}

// postToken posts form to /token as grafana; safe in any goroutine.
func postToken(c *http.Client, w *world, form url.Values) (tokenAnswer, error) {
	req, err := http.NewRequest(http.MethodPost, w.issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		return tokenAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("grafana", url.QueryEscape(rpSecret))
	resp, err := c.Do(req)
	if err != nil {
		return tokenAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return tokenAnswer{}, err
	}
	a := tokenAnswer{status: resp.StatusCode}
	return a, json.Unmarshal(raw, &a.body)
}

// TestCodeRaceRevokesWinner has 20 clients redeem one code at the same
// instant (docs/ha.md): at most one gets tokens, every other is a second use
// (invalid_grant), and after the race the refresh token of whoever got
// tokens is refused, since a second use revokes what the first issued.
// Whether the winner still gets its tokens depends on whether a loser
// marked the code before the winner's last check; either way no refresh
// token survives.
func TestCodeRaceRevokesWinner(t *testing.T) {
	const racers = 20
	for name, open := range engines() {
		t.Run(name, func(t *testing.T) {
			o := oidcWorldOptions()
			o.store = open
			w := newWorld(t, o)
			p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
			code := p.authorize(w.browser()).Get("code")
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpCallback(w)}}
			client := w.browser().client
			answers := make([]tokenAnswer, racers)
			errs := make([]error, racers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range racers {
				wg.Go(func() {
					<-start
					answers[i], errs[i] = postToken(client, w, form)
				})
			}
			close(start)
			wg.Wait()
			var winners []tokenAnswer
			for i, a := range answers {
				switch {
				case errs[i] != nil:
					t.Fatalf("racer %d: %v", i, errs[i])
				case a.status == http.StatusOK:
					winners = append(winners, a)
				case a.status != http.StatusBadRequest || a.body["error"] != "invalid_grant":
					t.Errorf("racer %d: %d %v, want tokens or invalid_grant", i, a.status, a.body)
				}
			}
			if len(winners) > 1 {
				t.Fatalf("%d racers got tokens for one code, want at most 1", len(winners))
			}
			t.Logf("%d of %d racers got tokens", len(winners), racers)
			for _, a := range winners {
				rt, _ := a.body["refresh_token"].(string)
				if rt == "" {
					t.Fatalf("the winner got no refresh token: %v", a.body)
				}
				got, err := postToken(client, w, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
				if err != nil {
					t.Fatal(err)
				}
				if got.status != http.StatusBadRequest || got.body["error"] != "invalid_grant" {
					t.Errorf("the winner's refresh token after the race: %d %v, want invalid_grant", got.status, got.body)
				}
			}
		})
	}
}

// pausingStore holds the first CreateRefreshFamily until release is
// closed, so that a test can send a second use of a code while the first
// is still issuing.
type pausingStore struct {
	store.Store
	once    sync.Once
	entered chan string // receives the id of the family being created
	release chan struct{}
}

func (s *pausingStore) CreateRefreshFamily(ctx context.Context, f store.RefreshFamily) error {
	first := false
	s.once.Do(func() { first = true })
	if first {
		s.entered <- f.ID
		<-s.release
	}
	return s.Store.CreateRefreshFamily(ctx, f)
}

// TestCodeReplayWhileIssuing sends the second use of a code while the first
// use has marked the code but not yet created its refresh family: the
// second use is refused, and the first gives its tokens up and leaves its
// family revoked, rather than handing out a refresh token the replay could
// not reach.
func TestCodeReplayWhileIssuing(t *testing.T) {
	for name, open := range engines() {
		t.Run(name, func(t *testing.T) {
			ps := &pausingStore{entered: make(chan string, 1), release: make(chan struct{})}
			o := oidcWorldOptions()
			o.store = func(t testing.TB, now func() time.Time) store.Store {
				ps.Store = open(t, now)
				return ps
			}
			w := newWorld(t, o)
			p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
			code := p.authorize(w.browser()).Get("code")
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpCallback(w)}}
			client := w.browser().client

			first := make(chan tokenAnswer, 1)
			go func() {
				a, err := postToken(client, w, form)
				if err != nil {
					a.status = -1
				}
				first <- a
			}()
			var family string
			select {
			case family = <-ps.entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the first use never reached the refresh family's creation")
			}
			second, err := postToken(client, w, form)
			if err != nil {
				t.Fatal(err)
			}
			if second.status != http.StatusBadRequest || second.body["error"] != "invalid_grant" {
				t.Errorf("second use while the first issues: %d %v, want invalid_grant", second.status, second.body)
			}
			close(ps.release)
			a := <-first
			if a.status != http.StatusBadRequest || a.body["error"] != "invalid_grant" {
				t.Errorf("first use, replayed while issuing: %d %v, want invalid_grant", a.status, a.body)
			}
			f, err := ps.Store.GetRefreshFamily(t.Context(), family)
			if err != nil {
				t.Fatalf("the first use's family: %v", err)
			}
			if !f.Revoked {
				t.Error("the first use's refresh family survived the replay")
			}
		})
	}
}

// newMemoryStore is the world's default store.
func newMemoryStore(now func() time.Time) store.Store {
	return memory.New(memory.Options{Now: now})
}
