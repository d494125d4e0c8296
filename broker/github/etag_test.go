package github_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/internal/githubfake"
)

// statusRecorder counts the statuses a client's requests got.
type statusRecorder struct {
	mu       sync.Mutex
	statuses []int
}

func (s *statusRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		s.mu.Lock()
		s.statuses = append(s.statuses, resp.StatusCode)
		s.mu.Unlock()
	}
	return resp, err
}

func (s *statusRecorder) take() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.statuses
	s.statuses = nil
	return out
}

// TestConditionalRequests: reading the same person again sends
// If-None-Match, and GitHub's 304s (free of rate limit) give the same
// identity; a change on GitHub is seen at once.
func TestConditionalRequests(t *testing.T) {
	fx := githubfake.DefaultFixture()
	gh := githubfake.New(fx, githubfake.Options{})
	srv := httptest.NewServer(gh)
	defer srv.Close()
	rec := &statusRecorder{}
	c, err := github.New(github.Config{
		ClientID: fx.Apps[0].ClientID, ClientSecret: fx.Apps[0].ClientSecret,
		WebURL: srv.URL, APIURL: srv.URL + "/api/v3", RedirectURL: "https://auth.example.test/callback",
		HTTPClient: &http.Client{Transport: rec},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := gh.IssueToken("alice", "read:org", "user:email")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := c.FetchIdentity(ctx, tok, []string{"acme"})
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); slices.Contains(got, http.StatusNotModified) {
		t.Fatalf("the first read got 304s: %v", got)
	}
	again, err := c.FetchIdentity(ctx, tok, []string{"acme"})
	if err != nil {
		t.Fatal(err)
	}
	got := rec.take()
	if len(got) == 0 || slices.ContainsFunc(got, func(s int) bool { return s != http.StatusNotModified }) {
		t.Errorf("the second read was not answered from conditional requests: %v", got)
	}
	if !slices.Equal(first.Groups([]string{"acme"}, "github"), again.Groups([]string{"acme"}, "github")) || again.Login != "alice" {
		t.Errorf("the 304s gave another identity: %+v", again)
	}
	fx.RemoveMember("acme", "alice")
	gh.SetFixture(fx)
	changed, err := c.FetchIdentity(ctx, tok, []string{"acme"})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(changed.Orgs, "acme") {
		t.Error("a change on GitHub was hidden by the conditional requests")
	}
}
