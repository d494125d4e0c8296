package broker_test

import (
	brokeroidc "github.com/ghbroker/ghbroker/broker/oidc"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAnonymousRequestsWriteNothing: /login and /authorize from browsers
// without a session write nothing to the store (the pending sign-in
// travels sealed in a cookie), so a flood of them cannot fill the bbolt
// file; a real sign-in still completes right after.
func TestAnonymousRequestsWriteNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 requests")
	}
	path := filepath.Join(t.TempDir(), "ghbroker.db")
	w := newWorld(t, worldOptions{boltPath: path, clients: func(w *world) []brokeroidc.Client {
		return []brokeroidc.Client{{ID: "grafana", Secret: rpSecret, RedirectURIs: []string{rpCallback(w)}}}
	}})
	// One sign-in first, so that the state-sealing key and the signing keys
	// exist: what follows may not add anything.
	w.browser().signIn("/")
	before := fileSize(t, path)
	long := strings.Repeat("x", 3000)
	authorize := w.issuer + "/authorize?response_type=code&client_id=grafana&scope=openid&redirect_uri=" +
		url.QueryEscape(rpCallback(w)) + "&state=" + long + "&nonce=n"
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i := range 5000 {
		u := w.issuer + "/login?rd=" + url.QueryEscape("/"+long)
		if i%2 == 1 {
			u = authorize
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Host = strings.TrimPrefix(w.issuer, "http://")
		resp, err := client.Do(rebase(req, w.srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	// bbolt grows in pages of 4 KiB and never shrinks; the file may grow by
	// one page at most (the freelist of a read transaction).
	if grown := fileSize(t, path) - before; grown > 4096 {
		t.Errorf("5,000 anonymous requests grew the store by %d bytes", grown)
	}
	if got := w.browser().signIn("/after-the-flood"); got != w.issuer+"/after-the-flood" {
		t.Errorf("sign-in after the flood ended at %s", got)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// rebase sends req to base (the test server) while keeping its Host.
func rebase(req *http.Request, base string) *http.Request {
	u, _ := url.Parse(base)
	req.URL.Scheme, req.URL.Host = u.Scheme, u.Host
	return req
}
