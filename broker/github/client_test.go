package github

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testNow is the fixed clock of every test client.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newTestClient returns a Client whose web and API bases are srv (the API
// under apiPath, e.g. "/api/v3" for GHES or "" for api.github.com), with a
// fixed clock. mod, if not nil, edits the config first.
func newTestClient(t *testing.T, srv *httptest.Server, apiPath string, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		ClientID:     "Iv1.test",
		ClientSecret: "s3cret",
		WebURL:       srv.URL,
		APIURL:       srv.URL + apiPath,
		RedirectURL:  "https://auth.example.com/callback",
		HTTPClient:   srv.Client(),
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:          func() time.Time { return testNow },
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// testWriter sends log output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestNew(t *testing.T) {
	valid := Config{
		ClientID:     "id",
		ClientSecret: "secret",
		WebURL:       "https://ghes.example.com/",
		APIURL:       "https://ghes.example.com/api/v3/",
		RedirectURL:  "https://auth.example.com/callback",
	}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // substring; "" means success
	}{
		{name: "valid", mod: func(*Config) {}},
		{name: "no client id", mod: func(c *Config) { c.ClientID = "" }, wantErr: "client id is empty"},
		{name: "no client secret", mod: func(c *Config) { c.ClientSecret = "" }, wantErr: "client secret is empty"},
		{name: "no web url", mod: func(c *Config) { c.WebURL = "" }, wantErr: "web url is empty"},
		{name: "relative api url", mod: func(c *Config) { c.APIURL = "/api/v3" }, wantErr: "api url"},
		{name: "ftp scheme", mod: func(c *Config) { c.WebURL = "ftp://github.com" }, wantErr: "scheme must be"},
		{name: "query in api url", mod: func(c *Config) { c.APIURL = "https://api.github.com?x=1" }, wantErr: "query"},
		{name: "credentials in url", mod: func(c *Config) { c.APIURL = "https://u:p@api.github.com" }, wantErr: "credentials"},
		{name: "no redirect url", mod: func(c *Config) { c.RedirectURL = "" }, wantErr: "redirect url is empty"},
		{name: "negative body limit", mod: func(c *Config) { c.MaxBodyBytes = -1 }, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.mod(&cfg)
			c, err := New(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got, want := c.apiURL("/user", nil), "https://ghes.example.com/api/v3/user"; got != want {
				t.Errorf("apiURL = %q, want %q", got, want)
			}
			if c.maxBody != DefaultMaxBodyBytes || c.maxPages != DefaultMaxPages || c.http.Timeout != DefaultTimeout ||
				c.userAgent != DefaultUserAgent || c.now == nil || c.log == nil {
				t.Errorf("defaults not filled: %+v", c)
			}
		})
	}
}

func TestApprovalURLs(t *testing.T) {
	c, err := New(Config{
		ClientID: "Iv1.abc", ClientSecret: "x",
		WebURL: "https://github.com", APIURL: "https://api.github.com",
		RedirectURL: "https://auth.example.com/callback",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.OrgApprovalURL("Acme"), "https://github.com/organizations/Acme/settings/oauth_application_policy"; got != want {
		t.Errorf("OrgApprovalURL = %q, want %q", got, want)
	}
	if got, want := c.RequestApprovalURL(), "https://github.com/settings/connections/applications/Iv1.abc"; got != want {
		t.Errorf("RequestApprovalURL = %q, want %q", got, want)
	}
}
