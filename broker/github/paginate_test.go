package github

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// servePage writes the page of items that r's opaque cursor selects, with
// a Link header shaped like GitHub's (rel="next" and rel="last"). Page
// numbers are refused: a client must follow Link, never build page URLs.
func servePage[T any](t *testing.T, w http.ResponseWriter, r *http.Request, items []T) {
	t.Helper()
	q := r.URL.Query()
	if q.Has("page") {
		t.Errorf("client built a page URL: %s", r.URL)
		http.Error(w, `{"message":"page is not accepted here"}`, http.StatusBadRequest)
		return
	}
	size := 30 // GitHub's default
	if pp, err := strconv.Atoi(q.Get("per_page")); err == nil && pp > 0 {
		size = min(pp, 100)
	}
	off := 0
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err == nil {
			off, err = strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		}
		if err != nil || off < 0 || off > len(items) {
			http.Error(w, `{"message":"bad cursor"}`, http.StatusBadRequest)
			return
		}
	}
	end := min(off+size, len(items))
	pageURL := func(offset int) string {
		q := r.URL.Query()
		q.Set("cursor", base64.RawURLEncoding.EncodeToString([]byte("offset:"+strconv.Itoa(offset))))
		return "http://" + r.Host + r.URL.Path + "?" + q.Encode()
	}
	if end < len(items) {
		last := (len(items) - 1) / size * size
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next", <%s>; rel="last"`, pageURL(end), pageURL(last)))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	page := items[off:end]
	if page == nil {
		page = []T{}
	}
	_ = json.NewEncoder(w).Encode(page)
}

// teamJSON is a team-full as /user/teams sends it (fields the client reads,
// plus a few it ignores).
func teamJSON(org, slug, parent string) map[string]any {
	t := map[string]any{
		"id": 1, "name": slug, "slug": slug, "privacy": "closed", "permission": "pull",
		"html_url":     "https://github.com/orgs/" + org + "/teams/" + slug,
		"organization": map[string]any{"login": org, "id": 7, "avatar_url": "https://avatars.example/o"},
		"parent":       nil,
	}
	if parent != "" {
		t["parent"] = map[string]any{"id": 2, "slug": parent, "name": parent}
	}
	return t
}

func TestPaginateFollowsLink(t *testing.T) {
	var teams []map[string]any
	for i := range 250 {
		teams = append(teams, teamJSON("acme", fmt.Sprintf("team-%03d", i), ""))
	}
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Path != "/api/v3/user/teams" {
			http.NotFound(w, r)
			return
		}
		servePage(t, w, r, teams)
	}))
	defer srv.Close()
	c := newTestClient(t, srv, "/api/v3", nil)

	got, err := paginate[apiTeam](t.Context(), c, "gho_tok", c.apiURL("/user/teams", url.Values{"per_page": {"100"}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 250 {
		t.Fatalf("got %d teams, want 250", len(got))
	}
	for i, team := range got {
		if want := fmt.Sprintf("team-%03d", i); team.Slug != want || team.Organization.Login != "acme" {
			t.Fatalf("team %d = %+v, want slug %s", i, team, want)
		}
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestPaginateRefuses(t *testing.T) {
	var foreignHits atomic.Int32
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreignHits.Add(1)
		_, _ = w.Write([]byte("[]"))
	}))
	defer foreign.Close()

	tests := []struct {
		name     string
		link     func(self string, hit int32) string // Link header of every page
		maxPages int
		wantIs   error
	}{
		{
			name:   "next on another host",
			link:   func(string, int32) string { return `<` + foreign.URL + `/user/teams?cursor=x>; rel="next"` },
			wantIs: ErrUnsafeNextLink,
		},
		{
			name: "next on another scheme",
			link: func(self string, _ int32) string {
				return `<` + strings.Replace(self, "http://", "https://", 1) + `?cursor=x>; rel="next"`
			},
			wantIs: ErrUnsafeNextLink,
		},
		{
			name:   "next loops to itself",
			link:   func(self string, _ int32) string { return `<` + self + `?per_page=100>; rel="next"` },
			wantIs: ErrTooManyPages,
		},
		{
			name: "endless pages",
			link: func(self string, hit int32) string {
				return fmt.Sprintf(`<%s?cursor=%d>; rel="next"`, self, hit)
			},
			maxPages: 3,
			wantIs:   ErrTooManyPages,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hit := hits.Add(1)
				w.Header().Set("Link", tt.link("http://"+r.Host+r.URL.Path, hit))
				_, _ = w.Write([]byte(`[{"slug":"a","organization":{"login":"acme"}}]`))
			}))
			defer srv.Close()
			c := newTestClient(t, srv, "", func(c *Config) { c.MaxPages = tt.maxPages })
			_, err := paginate[apiTeam](t.Context(), c, "gho_tok", c.apiURL("/user/teams", url.Values{"per_page": {"100"}}))
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("error = %v, want %v", err, tt.wantIs)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Path != "/user/teams" {
				t.Errorf("error = %#v, want *APIError for /user/teams", err)
			}
			if foreignHits.Load() != 0 {
				t.Fatal("the token was sent to another host")
			}
			if tt.maxPages > 0 && int(hits.Load()) != tt.maxPages {
				t.Errorf("%d pages fetched, want %d", hits.Load(), tt.maxPages)
			}
		})
	}
}

func TestPaginateRelativeNext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("cursor") == "" {
			w.Header().Set("Link", `<teams?cursor=2>; rel="next"`)
			_, _ = w.Write([]byte(`[{"slug":"a"}]`))
			return
		}
		_, _ = w.Write([]byte(`[{"slug":"b"}]`))
	}))
	defer srv.Close()
	c := newTestClient(t, srv, "/api/v3", nil)
	got, err := paginate[apiTeam](t.Context(), c, "gho_tok", c.apiURL("/user/teams", nil))
	if err != nil || len(got) != 2 || got[1].Slug != "b" {
		t.Fatalf("paginate = %+v, %v", got, err)
	}
}

func TestParseLinks(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{
			name: "github",
			in:   `<https://api.github.com/user/teams?per_page=100&page=2>; rel="next", <https://api.github.com/user/teams?per_page=100&page=3>; rel="last"`,
			want: map[string]string{
				"next": "https://api.github.com/user/teams?per_page=100&page=2",
				"last": "https://api.github.com/user/teams?per_page=100&page=3",
			},
		},
		{
			name: "comma and semicolon inside the URL",
			in:   `<https://h/x?a=1,2;b>; rel=next`,
			want: map[string]string{"next": "https://h/x?a=1,2;b"},
		},
		{
			name: "several rels, other params, case",
			in:   `<https://h/p>; title="a, b; c"; REL="Prev First", <https://h/n>;rel="next"`,
			want: map[string]string{"prev": "https://h/p", "first": "https://h/p", "next": "https://h/n"},
		},
		{
			name: "first next wins",
			in:   `<https://h/1>; rel="next", <https://h/2>; rel="next"`,
			want: map[string]string{"next": "https://h/1"},
		},
		{
			name: "garbage around a good link",
			in:   `junk; rel="next", <https://h/ok>; rel="next"; x, <unterminated`,
			want: map[string]string{"next": "https://h/ok"},
		},
		{
			name: "no rel",
			in:   `<https://h/x>; title="next"`,
			want: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, parseLinks(tt.in)); diff != "" {
				t.Errorf("parseLinks(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func FuzzParseLinks(f *testing.F) {
	f.Add(`<https://api.github.com/user/teams?page=2>; rel="next", <https://api.github.com/user/teams?page=3>; rel="last"`)
	f.Add(`<a>; rel="next \"x"; b, <c>`)
	f.Add(`;;,,<>; rel=`)
	f.Fuzz(func(t *testing.T, h string) {
		for rel, target := range parseLinks(h) {
			if rel == "" || target == "" || strings.ContainsRune(target, '>') || rel != strings.ToLower(rel) {
				t.Errorf("parseLinks(%q): bad entry %q → %q", h, rel, target)
			}
		}
	})
}

func TestSameOrigin(t *testing.T) {
	base, _ := url.Parse("https://ghes.example.com/api/v3")
	tests := []struct {
		in   string
		want bool
	}{
		{"https://ghes.example.com/api/v3/user/teams?page=2", true},
		{"https://GHES.example.com:443/anything", true},
		{"http://ghes.example.com/api/v3/user", false},
		{"https://ghes.example.com:8443/api/v3/user", false},
		{"https://ghes.example.com.evil.test/api/v3/user", false},
		{"https://evil.test/api/v3/user", false},
		{"https://user@ghes.example.com/api/v3/user", false},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := sameOrigin(base, u); got != tt.want {
			t.Errorf("sameOrigin(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
