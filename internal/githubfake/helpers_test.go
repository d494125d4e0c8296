package githubfake

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ghbroker/ghbroker/internal/testclock"
)

const (
	devClientID = "ghbroker-dev"
	devSecret   = "ghbroker-dev-secret"
	devCallback = "http://localhost:8080/callback"
)

// testClock is a settable clock for Options.Now.
type testClock = testclock.Clock

func newClock() *testClock { return testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }

// testFixture is the dev fixture plus an app registered on the loopback.
func testFixture() *Fixture {
	f := DefaultFixture()
	f.Apps = append(f.Apps, App{ClientID: "loopback-app", ClientSecret: "loopback-secret", CallbackURL: "http://127.0.0.1/cb"})
	return f
}

// newFake starts a fake (testFixture when f is nil) behind httptest.
func newFake(t *testing.T, f *Fixture, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	if f == nil {
		f = testFixture()
	}
	fake := New(f, opts)
	ts := httptest.NewServer(fake)
	t.Cleanup(ts.Close)
	return fake, ts
}

// noRedirect is a client that returns redirects instead of following them.
func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func oauthConfig(ts *httptest.Server, style oauth2.AuthStyle, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     devClientID,
		ClientSecret: devSecret,
		RedirectURL:  devCallback,
		Scopes:       scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   ts.URL + "/login/oauth/authorize",
			TokenURL:  ts.URL + "/login/oauth/access_token",
			AuthStyle: style,
		},
	}
}

// follow GETs rawURL without following redirects and returns the Location
// of the expected 302.
func follow(t *testing.T, rawURL string) *url.URL {
	t.Helper()
	resp, err := noRedirect().Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: status %d, want 302; body %.300s", rawURL, resp.StatusCode, b)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// acceptJSON adds Accept: application/json to every request.
type acceptJSON struct{ next http.RoundTripper }

func (a acceptJSON) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept", "application/json")
	return a.next.RoundTrip(r)
}

func jsonCtx() context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: acceptJSON{http.DefaultTransport}})
}

// signIn runs the whole web flow as login (auto-approved, PKCE S256) and
// returns the access token.
func signIn(t *testing.T, fake *Server, ts *httptest.Server, login string, scopes ...string) string {
	t.Helper()
	fake.SetAutoApprove(login)
	defer fake.SetAutoApprove("")
	cfg := oauthConfig(ts, oauth2.AuthStyleInParams, scopes...)
	verifier := oauth2.GenerateVerifier()
	loc := follow(t, cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	tok, err := cfg.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok.AccessToken
}

// apiGet performs an authenticated GET; client nil means no redirects.
func apiGet(t *testing.T, client *http.Client, rawURL, token string, hdr ...string) *http.Response {
	t.Helper()
	if client == nil {
		client = noRedirect()
	}
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// decode reads a JSON body into a new T, failing the test on error.
func decode[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	var v T
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T: %v; body %.300s", v, err, b)
	}
	return v
}

func wantStatus(t *testing.T, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: status %d, want %d; body %.300s", resp.Request.Method, resp.Request.URL, resp.StatusCode, want, b)
	}
}

// linkRel extracts the URL with the given rel from a Link header.
func linkRel(link, rel string) string {
	for _, part := range strings.Split(link, ",") {
		u, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if ok && strings.TrimSpace(params) == `rel="`+rel+`"` {
			return strings.Trim(u, "<>")
		}
	}
	return ""
}
