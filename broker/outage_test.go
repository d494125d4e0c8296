package broker_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/etcd"
	"github.com/ghbroker/ghbroker/store/etcd/etcdtest"
)

// TestStoreOutage stops etcd under a signed-in broker: sign-in at
// /callback, /authorize, /token and /userinfo answer 503 with Retry-After
// within a few seconds (never a hang, never a 500), and /healthz and
// /readyz stay 200, since readiness means "can answer checks" (docs/ha.md).
func TestStoreOutage(t *testing.T) {
	srv := etcdtest.Start(t)
	o := oidcWorldOptions()
	o.store = func(t testing.TB, now func() time.Time) store.Store {
		st, err := etcd.Open(context.Background(), etcd.Options{
			Endpoints: srv.Endpoints(), Now: now, RequestTimeout: time.Second, MonitorEvery: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	w := newWorld(t, o)
	b := w.browser()
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	tok, _, _ := p.codeFlow(b)

	// A second browser gets as far as GitHub's redirect back to /callback
	// before the outage.
	late := w.browser()
	_, _, callback := late.follow(w.issuer+"/login?rd="+url.QueryEscape("https://app.example.test/"), func(u string) bool {
		return strings.HasPrefix(u, w.issuer+"/callback")
	})
	if !strings.HasPrefix(callback, w.issuer+"/callback") {
		t.Fatalf("the sign-in did not reach /callback: %s", callback)
	}

	srv.Close()

	check := func(name string, do func() *http.Response, want int) {
		t.Helper()
		began := time.Now()
		resp := do()
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(began)
		if resp.StatusCode != want {
			t.Errorf("%s with etcd down: %d, want %d", name, resp.StatusCode, want)
		}
		if want == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", name)
		}
		if took > 5*time.Second {
			t.Errorf("%s took %s to answer, want a few seconds at most", name, took)
		}
	}
	do := func(c *http.Client, method, u string, body url.Values, hdr map[string]string) func() *http.Response {
		return func() *http.Response {
			var r io.Reader
			if body != nil {
				r = strings.NewReader(body.Encode())
			}
			req, _ := http.NewRequest(method, u, r)
			if body != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, u, err)
			}
			return resp
		}
	}
	check("/callback", do(late.client, http.MethodGet, callback, nil, map[string]string{"Accept": "text/html"}), http.StatusServiceUnavailable)
	check("/authorize", do(b.client, http.MethodGet, p.conf.AuthCodeURL("st"), nil, map[string]string{"Accept": "text/html"}), http.StatusServiceUnavailable)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
		"client_id": {"grafana"}, "client_secret": {rpSecret}}
	check("/token (refresh)", do(b.client, http.MethodPost, w.issuer+"/token", refresh, nil), http.StatusServiceUnavailable)
	code := url.Values{"grant_type": {"authorization_code"}, "code": {"some-code"}, "redirect_uri": {rpCallback(w)},
		"client_id": {"grafana"}, "client_secret": {rpSecret}}
	check("/token (code)", do(b.client, http.MethodPost, w.issuer+"/token", code, nil), http.StatusServiceUnavailable)
	check("/userinfo", do(b.client, http.MethodGet, w.issuer+"/userinfo", nil, map[string]string{"Authorization": "Bearer " + tok.AccessToken}), http.StatusServiceUnavailable)
	check("/healthz", do(b.client, http.MethodGet, w.issuer+"/healthz", nil, nil), http.StatusOK)
	check("/readyz", do(b.client, http.MethodGet, w.issuer+"/readyz", nil, nil), http.StatusOK)
	if strings.Contains(w.logs.String(), "level=ERROR msg=\"internal error\"") {
		t.Errorf("the outage was logged as an internal error:\n%s", w.logs)
	}
}
