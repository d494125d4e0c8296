package github

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// TestGetHeaders checks the request GitHub's REST API expects (Accept:
// application/vnd.github+json, X-GitHub-Api-Version, a User-Agent, without
// which GitHub refuses the request), on a GHES base where paths live under
// /api/v3.
func TestGetHeaders(t *testing.T) {
	var got http.Header
	var gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, gotPath = r.Header.Clone(), r.URL.Path
		_, _ = w.Write([]byte(`{"login":"octocat","id":1}`))
	}))
	defer srv.Close()
	c := newTestClient(t, srv, "/api/v3", nil)
	var u apiUser
	if err := c.getJSON(t.Context(), "gho_tok", c.apiURL("/user", nil), &u); err != nil {
		t.Fatal(err)
	}
	if gotPath != "/api/v3/user" {
		t.Errorf("path = %q, want /api/v3/user", gotPath)
	}
	for k, want := range map[string]string{
		"Accept":               "application/vnd.github+json",
		"Authorization":        "Bearer gho_tok",
		"X-Github-Api-Version": "2022-11-28",
		"User-Agent":           DefaultUserAgent,
	} {
		if got.Get(k) != want {
			t.Errorf("header %s = %q, want %q", k, got.Get(k), want)
		}
	}
}

func TestGetErrors(t *testing.T) {
	reset := testNow.Add(2 * time.Minute)
	tests := []struct {
		name     string
		status   int
		header   map[string]string
		body     string
		maxBody  int64
		want     error // compared with cmp on the concrete type
		wantIs   error
		wantTemp bool
	}{
		{
			name:   "401 bad credentials",
			status: 401, body: `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`,
			want:   &APIError{Status: 401, Message: "Bad credentials", DocumentationURL: "https://docs.github.com/rest", Path: "/user", Err: ErrBadCredentials},
			wantIs: ErrBadCredentials,
		},
		{
			name:   "404",
			status: 404, body: `{"message":"Not Found"}`,
			want:   &APIError{Status: 404, Message: "Not Found", Path: "/user", Err: ErrNotFound},
			wantIs: ErrNotFound,
		},
		{
			name:   "403 forbidden without rate limit headers",
			status: 403, body: `{"message":"Resource not accessible by integration"}`,
			header: map[string]string{"X-Ratelimit-Remaining": "4999"},
			want:   &APIError{Status: 403, Message: "Resource not accessible by integration", Path: "/user"},
		},
		{
			name:   "403 primary rate limit",
			status: 403, body: `{"message":"API rate limit exceeded for user ID 1."}`,
			header:   map[string]string{"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": strconv.FormatInt(reset.Unix(), 10)},
			want:     &RateLimitError{Status: 403, Reset: reset, RetryAfter: 2 * time.Minute, Message: "API rate limit exceeded for user ID 1.", Path: "/user"},
			wantTemp: true,
		},
		{
			name:     "429 primary rate limit resetting soon waits a minute",
			status:   429,
			header:   map[string]string{"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": strconv.FormatInt(testNow.Add(5*time.Second).Unix(), 10)},
			want:     &RateLimitError{Status: 429, Reset: testNow.Add(5 * time.Second), RetryAfter: MinRateLimitWait, Message: "Too Many Requests", Path: "/user"},
			wantTemp: true,
		},
		{
			name:   "429 secondary rate limit with retry-after",
			status: 429, body: `{"message":"You have exceeded a secondary rate limit."}`,
			header:   map[string]string{"Retry-After": "30"},
			want:     &RateLimitError{Status: 429, RetryAfter: 30 * time.Second, Message: "You have exceeded a secondary rate limit.", Path: "/user"},
			wantTemp: true,
		},
		{
			name:   "403 secondary rate limit without headers",
			status: 403, body: `{"message":"You have exceeded a secondary rate limit.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`,
			want:     &RateLimitError{Status: 403, RetryAfter: MinRateLimitWait, Message: "You have exceeded a secondary rate limit.", Path: "/user"},
			wantTemp: true,
		},
		{
			name:   "502 html",
			status: 502, body: "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
			header:   map[string]string{"Content-Type": "text/html"},
			want:     &UnavailableError{Status: 502, Path: "/user"},
			wantTemp: true,
		},
		{
			name:   "503 retry-after",
			status: 503, header: map[string]string{"Retry-After": "90"},
			want:     &UnavailableError{Status: 503, RetryAfter: 90 * time.Second, Path: "/user"},
			wantTemp: true,
		},
		{
			name:   "truncated json",
			status: 200, body: `{"login":"octocat","id":58`,
			wantIs: ErrMalformedResponse,
		},
		{
			name:   "200 html",
			status: 200, body: "<!DOCTYPE html><html></html>", header: map[string]string{"Content-Type": "text/html"},
			wantIs: ErrMalformedResponse,
		},
		{
			name:   "json of the wrong shape",
			status: 200, body: `["not","an","object"]`,
			wantIs: ErrMalformedResponse,
		},
		{
			name:   "body one byte over the limit",
			status: 200, body: `{"login":"octocat","id":1} `, maxBody: 26,
			want:   &APIError{Status: 200, Message: "response body exceeds 26 bytes", Path: "/user", Err: ErrBodyTooLarge},
			wantIs: ErrBodyTooLarge,
		},
		{
			name:   "body exactly at the limit",
			status: 200, body: `{"login":"octocat","id":1}`, maxBody: 26,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := newTestClient(t, srv, "", func(c *Config) { c.MaxBodyBytes = tt.maxBody })
			var u apiUser
			err := c.getJSON(t.Context(), "gho_tok", c.apiURL("/user", nil), &u)
			if tt.want == nil && tt.wantIs == nil {
				if err != nil {
					t.Fatalf("getJSON: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("getJSON succeeded")
			}
			if tt.want != nil {
				if diff := cmp.Diff(deref(tt.want), deref(err), cmpErrors); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error = %v, want errors.Is %v", err, tt.wantIs)
			}
			if got := IsTemporary(err); got != tt.wantTemp {
				t.Errorf("IsTemporary = %v, want %v", got, tt.wantTemp)
			}
			if tt.wantTemp && RetryAfter(err) <= 0 {
				t.Errorf("RetryAfter = %v for a temporary error", RetryAfter(err))
			}
			if bytes.Contains([]byte(err.Error()), []byte("gho_tok")) {
				t.Errorf("error %q leaks the token", err)
			}
		})
	}
}

// cmpErrors compares the sentinel in an error's Err field by identity.
var cmpErrors = cmp.Options{cmp.Comparer(func(a, b error) bool { return a == b }), cmp.AllowUnexported(APIError{})}

// deref returns the struct behind one of the package's typed errors, so cmp
// compares fields rather than stopping at the error interface.
func deref(err error) any {
	switch e := err.(type) {
	case *APIError:
		return *e
	case *RateLimitError:
		return *e
	case *UnavailableError:
		return *e
	}
	return err
}

// TestBodyBounded sends a 20 MiB body: the client must stop after
// MaxBodyBytes (default 4 MiB) and fail, not buffer it all.
func TestBodyBounded(t *testing.T) {
	var written atomic.Int64
	chunk := bytes.Repeat([]byte(" "), 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("["))
		for range 20 {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
		_, _ = w.Write([]byte("]"))
	}))
	c := newTestClient(t, srv, "", nil)
	var v []apiTeam
	err := c.getJSON(t.Context(), "gho_tok", c.apiURL("/user/teams", nil), &v)
	srv.Close() // waits for the handler
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("error = %v, want ErrBodyTooLarge", err)
	}
	if n := written.Load(); n >= 20<<20 {
		t.Errorf("server wrote all %d bytes: the client drained the body", n)
	}
}

// TestTruncatedTransfer cuts the connection mid-body: that is an outage, not
// a malformed answer.
func TestTruncatedTransfer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"login\":")
		_ = buf.Flush()
	}))
	defer srv.Close()
	c := newTestClient(t, srv, "", nil)
	var u apiUser
	err := c.getJSON(t.Context(), "gho_tok", c.apiURL("/user", nil), &u)
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("error = %v, want *UnavailableError", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"30", 30 * time.Second, true},
		{" 0 ", 0, true},
		{"-5", 0, false},
		{"99999999999999", 24 * time.Hour, true},
		{testNow.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{testNow.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.in, testNow)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestRetryAfterOfOtherErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("x"), &APIError{Status: 404}, ErrBadVerificationCode} {
		if IsTemporary(err) || RetryAfter(err) != 0 {
			t.Errorf("%v: IsTemporary = %v, RetryAfter = %v", err, IsTemporary(err), RetryAfter(err))
		}
	}
}

// TestRedirects: a same-origin redirect is followed (GitHub uses them for
// renamed resources); one to another port of the same host is not, so the
// token stays home.
func TestRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		if r.Header.Get("Authorization") != "" {
			t.Error("token sent to another origin")
		}
		_, _ = w.Write([]byte(`{"login":"mallory","id":666}`))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/user/renamed":
			http.Redirect(w, r, "/user", http.StatusMovedPermanently)
		case "/user/away":
			http.Redirect(w, r, other.URL+"/user", http.StatusFound)
		case "/user":
			_, _ = w.Write([]byte(`{"login":"octocat","id":1}`))
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv, "", nil)

	var u apiUser
	if err := c.getJSON(t.Context(), "gho_tok", c.apiURL("/user/renamed", nil), &u); err != nil || u.Login != "octocat" {
		t.Errorf("same-origin redirect: %+v, %v", u, err)
	}
	err := c.getJSON(t.Context(), "gho_tok", c.apiURL("/user/away", nil), &u)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusFound || IsTemporary(err) {
		t.Errorf("cross-origin redirect: error = %v, want *APIError with status 302", err)
	}
	if elsewhere.Load() != 0 {
		t.Error("cross-origin redirect was followed")
	}
}

func TestTruncateMessage(t *testing.T) {
	long := strings.Repeat("é", maxMessageLen) // 2 bytes each: a cut lands mid-rune or not
	for _, s := range []string{"short", long, "x" + long} {
		got := truncate(s)
		if !utf8.ValidString(got) || len(got) > maxMessageLen+len("…") {
			t.Errorf("truncate(%d bytes) = %d bytes, valid=%v", len(s), len(got), utf8.ValidString(got))
		}
		if len(s) <= maxMessageLen && got != s {
			t.Errorf("truncate changed a short message")
		}
	}
}
