package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/keys"
)

// vtJWKS is a fake issuer's JWKS endpoint: it serves the manager's key set
// or a failure of the test's choosing, and counts requests.
type vtJWKS struct {
	m       *keys.Manager
	fetches atomic.Int64

	mu      sync.Mutex
	fail    func(w http.ResponseWriter) // nil: serve the JWKS
	down    bool                        // the in-process transport refuses to connect
	release chan struct{}               // non-nil: requests wait for it
	accept  string                      // Accept header of the last request
}

func (j *vtJWKS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	j.fetches.Add(1)
	j.mu.Lock()
	fail, release := j.fail, j.release
	j.accept = r.Header.Get("Accept")
	j.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	if fail != nil {
		fail(w)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(j.m.JWKS())
}

func (j *vtJWKS) setFail(f func(w http.ResponseWriter)) {
	j.mu.Lock()
	j.fail = f
	j.mu.Unlock()
}

func (j *vtJWKS) setDown(down bool) {
	j.mu.Lock()
	j.down = down
	j.mu.Unlock()
}

// RoundTrip serves requests in-process, so that synctest bubbles see every
// goroutine block durably (a real socket would not).
func (j *vtJWKS) RoundTrip(r *http.Request) (*http.Response, error) {
	j.mu.Lock()
	down := j.down
	j.mu.Unlock()
	if down {
		return nil, errors.New("connection refused")
	}
	rec := httptest.NewRecorder()
	j.ServeHTTP(rec, r)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

func vtLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// vtRemote returns a Remote over j through the in-process transport.
func vtRemote(t *testing.T, j *vtJWKS, opts RemoteOptions) *Remote {
	t.Helper()
	opts.JWKSURL = "https://auth.example.com/keys"
	opts.HTTPClient = &http.Client{Transport: j}
	if opts.Logger == nil {
		opts.Logger = vtLogger(t)
	}
	r, err := NewRemote(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRemoteKeySet(t *testing.T) {
	e := vtNewEnv(t, keys.RS256)
	j := &vtJWKS{m: e.m}
	srv := httptest.NewServer(j)
	defer srv.Close()
	r, err := NewRemote(t.Context(), RemoteOptions{JWKSURL: srv.URL + "/keys", Now: e.clk.Now, Logger: vtLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got := j.fetches.Load(); got != 1 {
		t.Errorf("%d fetches by NewRemote, want 1", got)
	}
	if !strings.Contains(j.accept, "application/jwk-set+json") {
		t.Errorf("Accept: %q", j.accept)
	}
	if !r.LoadedAt().Equal(e.clk.Now()) {
		t.Errorf("LoadedAt = %v, want %v", r.LoadedAt(), e.clk.Now())
	}
	for _, sk := range []string{e.m.Keys().Current.KID, e.m.Keys().Next.KID} {
		k, ok := r.PublicKey(sk)
		if !ok || k.Algorithm != keys.RS256 || !k.IsPublic() {
			t.Errorf("key %s: %v %+v", sk, ok, k)
		}
	}
	v := e.verifier(t, Options{Keys: r})
	if _, err := v.Verify(e.sign(t, claims.KindSession, e.claims(claims.KindSession)), claims.KindSession); err != nil {
		t.Fatal(err)
	}

	// The issuer goes away: the keys stay.
	srv.Close()
	e.clk.Advance(time.Minute)
	if err := r.Refresh(t.Context()); err == nil {
		t.Fatal("refresh from a closed server succeeded")
	}
	if _, ok := r.PublicKey(e.m.Keys().Current.KID); !ok {
		t.Error("keys lost when the issuer went away")
	}
	if r.LoadedAt().Equal(e.clk.Now()) {
		t.Error("LoadedAt moved on a failed refresh")
	}
}

// TestRemoteKeySetKeepsLastGoodKeys: whatever the issuer answers wrong,
// the last good keys stay and Refresh says why.
func TestRemoteKeySetKeepsLastGoodKeys(t *testing.T) {
	e := vtNewEnv(t, keys.ES256)
	j := &vtJWKS{m: e.m}
	r := vtRemote(t, j, RemoteOptions{Now: e.clk.Now})
	kid := e.m.Keys().Current.KID
	loaded := r.LoadedAt()
	body := func(status int, b string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(b))
		}
	}
	privateJWK := string(e.m.Keys().Current.PrivateJWK)
	tests := []struct {
		name string
		fail func(http.ResponseWriter)
	}{
		{"500", body(http.StatusInternalServerError, "oops")},
		{"404", body(http.StatusNotFound, "")},
		{"304", body(http.StatusNotModified, "")},
		{"HTML", body(http.StatusOK, "<html>maintenance</html>")},
		{"not a key set", body(http.StatusOK, `{"issuer":"https://auth.example.com"}`)},
		{"keys not a list", body(http.StatusOK, `{"keys":{"kid":"x"}}`)},
		{"no keys", body(http.StatusOK, `{"keys":[]}`)},
		{"only private keys", body(http.StatusOK, `{"keys":[`+privateJWK+`]}`)},
		{"only a symmetric key", body(http.StatusOK, `{"keys":[{"kty":"oct","kid":"x","k":"c2VjcmV0","alg":"HS256"}]}`)},
		{"over 1 MiB", body(http.StatusOK, `{"keys":[],"pad":"`+strings.Repeat("x", 1<<20)+`"}`)},
		{"truncated", body(http.StatusOK, string(e.m.JWKS()[:40]))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j.setFail(tt.fail)
			e.clk.Advance(time.Minute)
			if err := r.Refresh(t.Context()); err == nil {
				t.Fatal("refresh succeeded")
			}
			if _, ok := r.PublicKey(kid); !ok {
				t.Fatal("last good key lost")
			}
			if !r.LoadedAt().Equal(loaded) {
				t.Error("LoadedAt moved on a failed refresh")
			}
		})
	}
	j.setFail(nil)
	j.setDown(true)
	if err := r.Refresh(t.Context()); err == nil {
		t.Fatal("refresh through a refused connection succeeded")
	}
	j.setDown(false)
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !r.LoadedAt().Equal(e.clk.Now()) {
		t.Error("LoadedAt not updated by a good refresh")
	}
}

// TestRemoteKeySetFiltersKeys: only public signing keys with a kid and an
// algorithm that fits them are kept.
func TestRemoteKeySetFiltersKeys(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(nil, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), nil)
	if err != nil {
		t.Fatal(err)
	}
	jwk := func(key any, kid, alg, use string) json.RawMessage {
		b, err := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: use}.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	set := []json.RawMessage{
		jwk(&rsaKey.PublicKey, "rsa", "RS256", "sig"),
		jwk(&rsaKey.PublicKey, "rsa-no-use", "PS256", ""),
		jwk(&ecKey.PublicKey, "ec-no-alg", "", "sig"),
		jwk(rsaKey, "rsa-private", "RS256", "sig"),
		jwk(ecKey, "ec-private", "ES256", "sig"),
		jwk([]byte("a shared secret"), "oct", "HS256", "sig"),
		jwk(&rsaKey.PublicKey, "rsa-enc", "RSA-OAEP", "enc"),
		jwk(&rsaKey.PublicKey, "", "RS256", "sig"),
		jwk(&rsaKey.PublicKey, "rsa-hs256", "HS256", "sig"),
		jwk(&ecKey.PublicKey, "ec-es384", "ES384", "sig"),
		jwk(&ecKey.PublicKey, "dup", "ES256", "sig"),
		jwk(&rsaKey.PublicKey, "dup", "RS256", "sig"),
		json.RawMessage(`{"kty":"RSA","kid":"broken","n":"AQAB"}`),
		json.RawMessage(`{"kty":"XYZ","kid":"unknown-kty"}`),
		json.RawMessage(`"not an object"`),
	}
	body, err := json.Marshal(map[string]any{"keys": set})
	if err != nil {
		t.Fatal(err)
	}
	j := &vtJWKS{}
	j.setFail(func(w http.ResponseWriter) { _, _ = w.Write(body) })
	r := vtRemote(t, j, RemoteOptions{})
	var got []string
	for kid := range r.keys.Load().byKID {
		got = append(got, kid)
	}
	slices.Sort(got)
	if want := []string{"ec-no-alg", "rsa", "rsa-no-use"}; !slices.Equal(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	if k, _ := r.PublicKey("ec-no-alg"); k.Algorithm != "ES256" {
		t.Errorf("inferred alg %q, want ES256", k.Algorithm)
	}
	for _, kid := range got {
		if k, _ := r.PublicKey(kid); !k.IsPublic() {
			t.Errorf("%s: private key kept", kid)
		}
	}
}

// TestRemoteKeySetUnknownKidFlood: ten thousand lookups of made-up kids
// cost at most one fetch per MinRefetchInterval, and no lookup waits.
func TestRemoteKeySetUnknownKidFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := vtNewEnv(t, keys.EdDSA)
		j := &vtJWKS{m: e.m}
		r := vtRemote(t, j, RemoteOptions{})
		ctx, cancel := context.WithCancel(t.Context())
		var run sync.WaitGroup
		run.Go(func() { r.Run(ctx) })

		flood := func() {
			var wg sync.WaitGroup
			for g := range 100 {
				wg.Go(func() {
					for i := range 100 {
						if _, ok := r.PublicKey(fmt.Sprintf("made-up-%d-%d", g, i)); ok {
							t.Error("a made-up kid was found")
						}
					}
				})
			}
			wg.Wait()
			synctest.Wait() // and whatever fetch the flood started is done
		}
		flood() // right after the first fetch: within MinRefetchInterval
		if got := j.fetches.Load(); got != 1 {
			t.Errorf("%d fetches after a flood within MinRefetchInterval, want 1", got)
		}
		time.Sleep(11 * time.Second)
		flood()
		flood()
		if got := j.fetches.Load(); got != 2 {
			t.Errorf("%d fetches for 30,000 unknown-kid lookups, want 2 (the first, and one refetch)", got)
		}
		cancel()
		run.Wait()
	})
}

// TestRemoteKeySetRotation: a rotation by the issuer reaches the replica,
// by the periodic refresh and by the refetch that an unknown kid asks for.
func TestRemoteKeySetRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		e := vtNewEnv(t, keys.EdDSA)
		j := &vtJWKS{m: e.m}
		r := vtRemote(t, j, RemoteOptions{RefreshEvery: 5 * time.Minute, MinRefetchInterval: 10 * time.Second})
		v := e.verifier(t, Options{Keys: r})
		var run sync.WaitGroup
		run.Go(func() { r.Run(ctx) })

		verify := func() error {
			_, err := v.Verify(e.sign(t, claims.KindSession, e.claims(claims.KindSession)), claims.KindSession)
			return err
		}
		// The next key is published before it signs: a rotation costs
		// nothing, even before any refresh.
		if _, err := e.m.Rotate(ctx, true); err != nil {
			t.Fatal(err)
		}
		if err := verify(); err != nil {
			t.Fatalf("first token of a pre-published key: %v", err)
		}
		next := e.m.Keys().Next.KID
		if _, ok := r.keys.Load().byKID[next]; ok {
			t.Fatal("new next key known before any refresh")
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if _, ok := r.keys.Load().byKID[next]; !ok {
			t.Fatal("periodic refresh did not pick up the new next key")
		}

		// Two rotations in a row: the signing key was never seen.
		time.Sleep(11 * time.Second) // past MinRefetchInterval since the last fetch
		for range 2 {
			if _, err := e.m.Rotate(ctx, true); err != nil {
				t.Fatal(err)
			}
		}
		fetches := j.fetches.Load()
		if err := verify(); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("token of a never-seen key: %v, want ErrUnknownKey", err)
		}
		synctest.Wait()
		if got := j.fetches.Load(); got != fetches+1 {
			t.Errorf("%d fetches after an unknown kid, want 1", got-fetches)
		}
		if err := verify(); err != nil {
			t.Fatalf("after the refetch: %v", err)
		}
		cancel()
		run.Wait()
	})
}

// TestRemoteKeySetIssuerDown: a replica that starts while the issuer is
// down has no keys and retries every MinRefetchInterval; once it has keys,
// an outage keeps them.
func TestRemoteKeySetIssuerDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		e := vtNewEnv(t, keys.EdDSA)
		j := &vtJWKS{m: e.m}
		j.setDown(true)
		r := vtRemote(t, j, RemoteOptions{MinRefetchInterval: 10 * time.Second, RefreshEvery: time.Hour})
		if !r.LoadedAt().IsZero() {
			t.Fatal("LoadedAt set without any key")
		}
		kid := e.m.Keys().Current.KID
		if _, ok := r.PublicKey(kid); ok {
			t.Fatal("a key without any fetch")
		}
		var run sync.WaitGroup
		run.Go(func() { r.Run(ctx) })
		time.Sleep(time.Minute)
		synctest.Wait()
		if !r.LoadedAt().IsZero() {
			t.Fatal("loaded while down")
		}
		j.setDown(false)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if r.LoadedAt().IsZero() {
			t.Fatal("no keys 10s after the issuer came back")
		}
		loaded := r.LoadedAt()

		j.setFail(func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) })
		before := j.fetches.Load()
		time.Sleep(time.Hour + time.Minute)
		synctest.Wait()
		if got := j.fetches.Load() - before; got < 2 || got > 8 {
			t.Errorf("%d fetches in the first minute of an outage, want a retry every 10s", got)
		}
		if _, ok := r.PublicKey(kid); !ok || !r.LoadedAt().Equal(loaded) {
			t.Error("keys lost during the outage")
		}
		cancel()
		run.Wait()
	})
}

// TestRemoteKeySetRefreshCoalesced: concurrent Refresh calls share one
// fetch.
func TestRemoteKeySetRefreshCoalesced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := vtNewEnv(t, keys.EdDSA)
		j := &vtJWKS{m: e.m}
		r := vtRemote(t, j, RemoteOptions{})
		release := make(chan struct{})
		j.mu.Lock()
		j.release = release
		j.mu.Unlock()
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if err := r.Refresh(t.Context()); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()
		if got := j.fetches.Load(); got != 2 {
			t.Errorf("%d fetches for 10 concurrent refreshes, want 1 (after the first)", got-1)
		}
		close(release)
		wg.Wait()
	})
}

func TestNewRemoteKeySetOptions(t *testing.T) {
	for _, opts := range []RemoteOptions{
		{},
		{JWKSURL: "/keys"},
		{JWKSURL: "ftp://auth.example.com/keys"},
		{JWKSURL: "https://"},
		{JWKSURL: "https://auth.example.com/keys", RefreshEvery: -time.Second},
		{JWKSURL: "https://auth.example.com/keys", MinRefetchInterval: -time.Second},
	} {
		if _, err := NewRemote(t.Context(), opts); err == nil {
			t.Errorf("%+v accepted", opts)
		}
	}
}
