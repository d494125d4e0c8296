package githubfake

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAPIVersionHeader(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	tok, _ := fake.IssueToken("alice")
	for _, tc := range []struct {
		sent, selected string
		want           int
	}{{"", "2022-11-28", 200}, {"2022-11-28", "2022-11-28", 200}, {"2026-03-10", "2026-03-10", 200}, {"v3", "", 400}, {"2099-01-01", "", 400}} {
		var hdr []string
		if tc.sent != "" {
			hdr = []string{"X-GitHub-Api-Version", tc.sent}
		}
		resp := apiGet(t, nil, ts.URL+"/user", tok, hdr...)
		wantStatus(t, resp, tc.want)
		if got := resp.Header.Get("X-GitHub-Api-Version-Selected"); got != tc.selected {
			t.Errorf("%q: selected %q, want %q", tc.sent, got, tc.selected)
		}
		if tc.want == 400 && !strings.Contains(decode[apiError](t, resp).Message, "is not a supported version") {
			t.Errorf("%q: 400 without GitHub's message", tc.sent)
		}
	}
}

func TestAuthenticationErrors(t *testing.T) {
	_, ts := newFake(t, nil, Options{})
	for _, tc := range []struct{ header, msg string }{
		{"", "Requires authentication"},
		{"Bearer gho_notatoken", "Bad credentials"},
		{"Basic Zm9vOmJhcg==", "Bad credentials"},
	} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/user/teams", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, resp, http.StatusUnauthorized)
		e := decode[apiError](t, resp)
		resp.Body.Close()
		if e.Message != tc.msg || e.Status != "401" || e.DocumentationURL != "https://docs.github.com/rest" {
			t.Errorf("%q: %+v", tc.header, e)
		}
	}
}

func TestTokenSchemeAccepted(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	tok, _ := fake.IssueToken("alice")
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/user", nil)
	req.Header.Set("Authorization", "token "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantStatus(t, resp, http.StatusOK)
}

func TestETagAndRateLimitHeaders(t *testing.T) {
	clock := newClock()
	fake, ts := newFake(t, nil, Options{Now: clock.Now, RateLimit: 3})
	tok, _ := fake.IssueToken("alice", "read:org")
	used := func(resp *http.Response) int { n, _ := strconv.Atoi(resp.Header.Get("X-RateLimit-Used")); return n }

	first := apiGet(t, nil, ts.URL+"/user/teams", tok)
	wantStatus(t, first, http.StatusOK)
	etag := first.Header.Get("ETag")
	h := first.Header
	if etag == "" || h.Get("X-RateLimit-Limit") != "3" || h.Get("X-RateLimit-Remaining") != "2" || used(first) != 1 ||
		h.Get("X-RateLimit-Resource") != "core" || h.Get("X-RateLimit-Reset") != strconv.FormatInt(clock.Now().Add(time.Hour).Unix(), 10) {
		t.Fatalf("headers = %v", h)
	}
	notModified := apiGet(t, nil, ts.URL+"/user/teams", tok, "If-None-Match", etag)
	wantStatus(t, notModified, http.StatusNotModified)
	if used(notModified) != 1 {
		t.Errorf("304 counted against the limit: used = %d", used(notModified))
	}
	wantStatus(t, apiGet(t, nil, ts.URL+"/user/teams", tok, "If-None-Match", `"other"`), http.StatusOK)
	wantStatus(t, apiGet(t, nil, ts.URL+"/user", tok), http.StatusOK)

	limited := apiGet(t, nil, ts.URL+"/user", tok)
	wantStatus(t, limited, http.StatusForbidden)
	if limited.Header.Get("X-RateLimit-Remaining") != "0" ||
		!strings.HasPrefix(decode[apiError](t, limited).Message, "API rate limit exceeded for user ID 1001.") {
		t.Errorf("exhausted: %v", limited.Header)
	}
	clock.Advance(time.Hour)
	wantStatus(t, apiGet(t, nil, ts.URL+"/user", tok), http.StatusOK)
}

func TestUnknownRouteIsJSON404(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	tok, _ := fake.IssueToken("alice")
	for _, path := range []string{"/repos/acme/x", "/api/v3/nope"} {
		resp := apiGet(t, nil, ts.URL+path, tok)
		wantStatus(t, resp, http.StatusNotFound)
		if e := decode[apiError](t, resp); e.Message != "Not Found" {
			t.Errorf("%s: %+v", path, e)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/user", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantStatus(t, resp, http.StatusNotFound)
}
