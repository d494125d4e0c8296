package github

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeGitHub serves the REST endpoints FetchIdentity reads, under base
// ("/api/v3" for GHES), answering as GitHub does (REST API version
// 2022-11-28).
type fakeGitHub struct {
	t            *testing.T
	base         string
	user         string           // JSON body of GET /user
	emails       []map[string]any // GET /user/emails
	emailsStatus int              // non-zero: answer with this status instead (404: no user:email scope)
	teams        []map[string]any // GET /user/teams
	memberships  []map[string]any // GET /user/memberships/orgs?state=active
	// orgs answers GET /user/memberships/orgs/{org}, keyed by lower-case
	// org; a missing org is a 404.
	orgs map[string]http.HandlerFunc
	// hook, if set, sees every authenticated request first (endpoint is
	// the path under base); returning true means it answered.
	hook func(endpoint string, w http.ResponseWriter, r *http.Request) bool

	mu        sync.Mutex
	orgChecks []string // orgs asked about directly, in arrival order
}

const octocat = `{"login":"octocat","id":583231,"node_id":"MDQ6VXNlcjU4MzIzMQ==",
 "avatar_url":"https://avatars.githubusercontent.com/u/583231?v=4","html_url":"https://github.com/octocat",
 "type":"User","site_admin":false,"name":"The Octocat","email":"octocat@github.com",
 "created_at":"2011-01-25T18:44:36Z","updated_at":"2024-01-01T00:00:00Z"}`

// restrictedMessage is the body GitHub sends when an organization's OAuth
// App access restrictions refuse the app.
const restrictedMessage = `{"message":"Although you appear to have the correct authorization credentials, the ` +
	"`secretco`" + ` organization has enabled OAuth App access restrictions, meaning that data access to third-parties is limited. For more information on these restrictions, including how to enable this app, visit https://docs.github.com/articles/restricting-access-to-your-organization-s-data/","documentation_url":"https://docs.github.com/articles/restricting-access-to-your-organization-s-data/"}`

func membership(org, state string) map[string]any {
	return map[string]any{
		"url":          "https://api.github.com/orgs/" + org + "/memberships/octocat",
		"state":        state,
		"role":         "member",
		"organization": map[string]any{"login": org, "id": 1, "url": "https://api.github.com/orgs/" + org},
		"user":         map[string]any{"login": "octocat", "id": 583231},
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeGitHub) start() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+f.base+"/user", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte(f.user))
	})
	mux.HandleFunc("GET "+f.base+"/user/emails", func(w http.ResponseWriter, r *http.Request) {
		if f.emailsStatus != 0 {
			writeJSON(w, f.emailsStatus, map[string]string{"message": http.StatusText(f.emailsStatus)})
			return
		}
		servePage(f.t, w, r, f.emails)
	})
	mux.HandleFunc("GET "+f.base+"/user/teams", func(w http.ResponseWriter, r *http.Request) {
		servePage(f.t, w, r, f.teams)
	})
	mux.HandleFunc("GET "+f.base+"/user/memberships/orgs", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("state") != "active" {
			f.t.Errorf("memberships requested without state=active: %s", r.URL)
		}
		servePage(f.t, w, r, f.memberships)
	})
	mux.HandleFunc("GET "+f.base+"/user/memberships/orgs/{org}", func(w http.ResponseWriter, r *http.Request) {
		org := r.PathValue("org")
		f.mu.Lock()
		f.orgChecks = append(f.orgChecks, org)
		f.mu.Unlock()
		if h, ok := f.orgs[strings.ToLower(org)]; ok {
			h(w, r)
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user"})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer gho_tok" {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
			return
		}
		if f.hook != nil && f.hook(strings.TrimPrefix(r.URL.Path, f.base), w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	f.t.Cleanup(srv.Close)
	return srv
}

// newFake returns a fake with octocat's profile, one primary verified
// email, and no orgs or teams.
func newFake(t *testing.T, base string) *fakeGitHub {
	return &fakeGitHub{
		t:    t,
		base: base,
		user: octocat,
		emails: []map[string]any{
			{"email": "octo@users.noreply.github.com", "primary": false, "verified": true, "visibility": nil},
			{"email": "octocat@example.com", "primary": true, "verified": true, "visibility": "private"},
		},
	}
}

func TestFetchIdentity(t *testing.T) {
	f := newFake(t, "/api/v3")
	f.teams = []map[string]any{
		teamJSON("other", "dev", ""),
		teamJSON("acme", "sre", "platform"),
		teamJSON("acme", "platform", ""),
	}
	f.memberships = []map[string]any{membership("acme", "active"), membership("other", "active")}
	f.orgs = map[string]http.HandlerFunc{
		// The memberships list lags: the direct check knows better.
		"lagco": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, membership("LagCo", "active"))
		},
		"pendingco": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, membership("pendingco", "pending"))
		},
		"secretco": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(restrictedMessage))
		},
		"samlco": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-GitHub-SSO", "required; url=https://github.com/orgs/samlco/sso?authorization_request=x")
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "Resource protected by organization SAML enforcement. You must grant your OAuth token access to this organization."})
		},
	}
	srv := f.start()
	c := newTestClient(t, srv, "/api/v3", nil)

	allowed := []string{"ACME", "lagco", "gone", "secretco", "samlco", "pendingco", "LAGCO"}
	id, err := c.FetchIdentity(t.Context(), "gho_tok", allowed)
	if err != nil {
		t.Fatal(err)
	}
	want := &Identity{
		ID:             583231,
		Login:          "octocat",
		Name:           "The Octocat",
		Email:          "octocat@example.com",
		EmailVerified:  true,
		AvatarURL:      "https://avatars.githubusercontent.com/u/583231?v=4",
		Orgs:           []string{"acme", "LagCo", "other"},
		Teams:          []Team{{Org: "acme", Slug: "platform"}, {Org: "acme", Slug: "sre", Parent: "platform"}, {Org: "other", Slug: "dev"}},
		RestrictedOrgs: []string{"secretco"},
		// The SSO URL is on github.com, not this client's GitHub: dropped.
		SSORequired: []SSOOrg{{Org: "samlco"}},
	}
	if diff := cmp.Diff(want, id); diff != "" {
		t.Errorf("Identity (-want +got):\n%s", diff)
	}
	slices.Sort(f.orgChecks)
	if diff := cmp.Diff([]string{"gone", "lagco", "pendingco", "samlco", "secretco"}, f.orgChecks); diff != "" {
		t.Errorf("direct org checks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"LagCo", "acme", "acme/platform", "acme/sre"}, id.Groups([]string{"acme", "lagco"}, "")); diff != "" {
		t.Errorf("Groups (-want +got):\n%s", diff)
	}
}

// TestFetchIdentityConcurrent proves the four lists are fetched at once:
// each first-page request is held until all four have arrived.
func TestFetchIdentityConcurrent(t *testing.T) {
	f := newFake(t, "")
	all := make(chan struct{})
	var arrived atomic.Int32
	f.hook = func(endpoint string, w http.ResponseWriter, r *http.Request) bool {
		switch endpoint {
		case "/user", "/user/emails", "/user/teams", "/user/memberships/orgs":
		default:
			return false
		}
		if arrived.Add(1) == 4 {
			close(all)
		}
		select {
		case <-all:
			return false
		case <-time.After(5 * time.Second):
			f.t.Errorf("%s: only %d of 4 first-page requests arrived together", endpoint, arrived.Load())
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
	}
	c := newTestClient(t, f.start(), "", nil)
	if _, err := c.FetchIdentity(t.Context(), "gho_tok", nil); err != nil {
		t.Fatal(err)
	}
}

// TestFetchIdentityFirstErrorCancels: a 401 on one list cancels the others
// (the memberships handler would otherwise hang) and is what comes back.
func TestFetchIdentityFirstErrorCancels(t *testing.T) {
	f := newFake(t, "")
	f.hook = func(endpoint string, w http.ResponseWriter, r *http.Request) bool {
		switch endpoint {
		case "/user/teams":
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
			return true
		case "/user/memberships/orgs":
			select {
			case <-r.Context().Done(): // the client gave up: good
			case <-time.After(5 * time.Second):
				f.t.Error("memberships request not canceled after the first error")
			}
			return true
		}
		return false
	}
	c := newTestClient(t, f.start(), "", nil)
	_, err := c.FetchIdentity(t.Context(), "gho_tok", []string{"acme"})
	if !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("error = %v, want ErrBadCredentials", err)
	}
}

func TestFetchIdentityErrors(t *testing.T) {
	tests := []struct {
		name     string
		token    string
		setup    func(f *fakeGitHub)
		wantIs   error
		wantTemp bool
	}{
		{name: "revoked token", token: "gho_revoked", wantIs: ErrBadCredentials},
		{
			name: "rate limited list",
			setup: func(f *fakeGitHub) {
				f.hook = func(endpoint string, w http.ResponseWriter, r *http.Request) bool {
					if endpoint != "/user/memberships/orgs" {
						return false
					}
					w.Header().Set("X-Ratelimit-Remaining", "0")
					w.Header().Set("X-Ratelimit-Reset", "1772366400")
					writeJSON(w, http.StatusForbidden, map[string]string{"message": "API rate limit exceeded"})
					return true
				}
			},
			wantTemp: true,
		},
		{
			name: "org check unavailable",
			setup: func(f *fakeGitHub) {
				f.orgs = map[string]http.HandlerFunc{"acme": func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(http.StatusBadGateway)
					_, _ = w.Write([]byte("<html>502</html>"))
				}}
			},
			wantTemp: true,
		},
		{
			name:   "user without id",
			setup:  func(f *fakeGitHub) { f.user = `{"login":"ghost"}` },
			wantIs: ErrMalformedResponse,
		},
		{
			name:   "user is not an object",
			setup:  func(f *fakeGitHub) { f.user = `<html>` },
			wantIs: ErrMalformedResponse,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, "")
			if tt.setup != nil {
				tt.setup(f)
			}
			c := newTestClient(t, f.start(), "", nil)
			_, err := c.FetchIdentity(t.Context(), orDefault(tt.token, "gho_tok"), []string{"acme"})
			if err == nil {
				t.Fatal("FetchIdentity succeeded")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error = %v, want %v", err, tt.wantIs)
			}
			if IsTemporary(err) != tt.wantTemp {
				t.Errorf("IsTemporary(%v) = %v, want %v", err, IsTemporary(err), tt.wantTemp)
			}
		})
	}
}

func orDefault(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestFetchIdentityEmail(t *testing.T) {
	tests := []struct {
		name         string
		emails       []map[string]any
		emailsStatus int
		user         string
		wantEmail    string
		wantVerified bool
	}{
		{name: "primary verified", emails: newFake(t, "").emails, wantEmail: "octocat@example.com", wantVerified: true},
		{
			name: "primary unverified",
			emails: []map[string]any{
				{"email": "old@example.com", "primary": false, "verified": true},
				{"email": "new@example.com", "primary": true, "verified": false},
			},
			wantEmail: "new@example.com",
		},
		{name: "no user:email scope falls back to public email", emailsStatus: 404, wantEmail: "octocat@github.com"},
		{name: "forbidden emails fall back too", emailsStatus: 403, wantEmail: "octocat@github.com"},
		{
			name:         "no scope and no public email",
			emailsStatus: 404,
			user:         `{"login":"octocat","id":1,"email":null,"name":null}`,
		},
		{name: "empty list", emails: []map[string]any{}, wantEmail: "octocat@github.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, "")
			f.emails, f.emailsStatus = tt.emails, tt.emailsStatus
			if tt.user != "" {
				f.user = tt.user
			}
			c := newTestClient(t, f.start(), "", nil)
			id, err := c.FetchIdentity(t.Context(), "gho_tok", nil)
			if err != nil {
				t.Fatal(err)
			}
			if id.Email != tt.wantEmail || id.EmailVerified != tt.wantVerified {
				t.Errorf("email = %q verified=%v, want %q verified=%v", id.Email, id.EmailVerified, tt.wantEmail, tt.wantVerified)
			}
		})
	}
}
