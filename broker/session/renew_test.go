package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/authz/verify"
	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/broker/session"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/internal/githubfake"
	"github.com/ghbroker/ghbroker/internal/testclock"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/revocation"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/memory"
)

const issuer = "https://auth.example.test"

type fixture struct {
	gh       *githubfake.Server
	fx       *githubfake.Fixture
	client   *github.Client
	store    *memory.Store
	verifier *verify.Verifier
	clock    *testclock.Clock
	m        *session.Manager
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{fx: githubfake.DefaultFixture(), clock: testclock.New(time.Now())}
	f.gh = githubfake.New(f.fx, githubfake.Options{})
	srv := httptest.NewServer(f.gh)
	t.Cleanup(srv.Close)
	var err error
	f.client, err = github.New(github.Config{
		ClientID: f.fx.Apps[0].ClientID, ClientSecret: f.fx.Apps[0].ClientSecret,
		WebURL: srv.URL, APIURL: srv.URL + "/api/v3", RedirectURL: issuer + "/callback",
	})
	if err != nil {
		t.Fatal(err)
	}
	f.store = memory.New(memory.Options{Now: f.clock.Now})
	km, err := keys.NewManager(context.Background(), f.store, keys.Options{Algorithm: keys.ES256, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.verifier, err = verify.New(verify.Options{Issuer: issuer, Keys: km, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.m, err = session.New(context.Background(), session.Config{
		Issuer: issuer, Signer: km, Verifier: f.verifier, Store: f.store, GitHub: f.client,
		AllowedOrgs: []string{"acme"}, CookieDomain: ".example.test", Now: f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// start signs alice in the way /callback does and returns her session.
func (f *fixture) start(t *testing.T) session.Started {
	t.Helper()
	ctx := context.Background()
	tok, err := f.gh.IssueToken("alice", "read:org", "user:email")
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.client.FetchIdentity(ctx, tok, f.m.AllowedOrgs())
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.m.Start(ctx, tok, id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestStartSetsCookiesThatCurrentReads: the cookies Start's token and
// renewal value go into are the ones Current and Renewable read back.
func TestStartSetsCookiesThatCurrentReads(t *testing.T) {
	f := newFixture(t)
	st := f.start(t)
	rec := httptest.NewRecorder()
	f.m.SetCookies(rec, httptest.NewRequest(http.MethodGet, issuer+"/", nil), st.Token, st.SID)
	req := httptest.NewRequest(http.MethodGet, issuer+"/", nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	c := f.m.Current(req)
	if c == nil || c.PreferredUsername != "alice" || c.SessionID != st.Session.ID {
		t.Fatalf("Current = %+v", c)
	}
	if sess, ok := f.m.Renewable(context.Background(), req); !ok || sess.ID != st.Session.ID {
		t.Fatalf("Renewable = %v %v", sess.ID, ok)
	}
	f.clock.Advance(2 * time.Hour)
	if f.m.Current(req) != nil {
		t.Error("an expired session token is still current")
	}
	if _, ok := f.m.Renewable(context.Background(), req); !ok {
		t.Error("the server-side session should outlive the token")
	}
}

// TestReread: the one renewal step follows what GitHub says now.
func TestReread(t *testing.T) {
	ctx := context.Background()
	t.Run("team change", func(t *testing.T) {
		f := newFixture(t)
		st := f.start(t)
		team := ""
		for _, g := range st.Session.Groups {
			if len(g) > 5 && g[:5] == "acme/" {
				team = g
				break
			}
		}
		if team == "" {
			t.Fatalf("alice has no acme team: %v", st.Session.Groups)
		}
		fx := githubfake.DefaultFixture()
		for i := range fx.Orgs {
			for j := range fx.Orgs[i].Teams {
				if fx.Orgs[i].Login+"/"+fx.Orgs[i].Teams[j].Slug == team {
					fx.Orgs[i].Teams[j].Members = slices.DeleteFunc(fx.Orgs[i].Teams[j].Members, func(m string) bool { return m == "alice" })
				}
			}
		}
		f.gh.SetFixture(fx)
		sess, err := f.m.Reread(ctx, st.Session)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(sess.Groups, team) {
			t.Errorf("groups still have %s: %v", team, sess.Groups)
		}
		stored, err := f.store.GetSession(ctx, st.Session.ID)
		if err != nil || slices.Contains(stored.Groups, team) {
			t.Errorf("stored session not updated: %v %v", stored.Groups, err)
		}
		tok, err := f.m.Mint(sess)
		if err != nil {
			t.Fatal(err)
		}
		c, err := f.verifier.Verify(tok, claims.KindSession)
		if err != nil || c.InGroup(team) {
			t.Errorf("minted token still in %s (%v)", team, err)
		}
	})
	t.Run("left the org", func(t *testing.T) {
		f := newFixture(t)
		st := f.start(t)
		fx := githubfake.DefaultFixture()
		fx.RemoveMember("acme", "alice")
		f.gh.SetFixture(fx)
		_, err := f.m.Reread(ctx, st.Session)
		var na *session.NotAdmittedError
		if !errors.As(err, &na) || na.Identity.Login != "alice" {
			t.Fatalf("err = %v, want NotAdmittedError", err)
		}
		if _, err := f.store.GetSession(ctx, st.Session.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session kept after the user left every allowed org: %v", err)
		}
	})
	t.Run("GitHub token revoked", func(t *testing.T) {
		f := newFixture(t)
		st := f.start(t)
		f.gh.RevokeUser("alice")
		if _, err := f.m.Reread(ctx, st.Session); !errors.Is(err, session.ErrGitHubToken) {
			t.Fatalf("err = %v, want ErrGitHubToken", err)
		}
		if _, err := f.store.GetSession(ctx, st.Session.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session kept with a revoked GitHub token: %v", err)
		}
	})
	t.Run("GitHub down", func(t *testing.T) {
		f := newFixture(t)
		st := f.start(t)
		f.gh.SetFaults(githubfake.Faults{ServerError: true})
		_, err := f.m.Reread(ctx, st.Session)
		var ge *session.GitHubError
		if !errors.As(err, &ge) || !github.IsTemporary(err) {
			t.Fatalf("err = %v, want a temporary GitHubError", err)
		}
		if _, err := f.store.GetSession(ctx, st.Session.ID); err != nil {
			t.Errorf("an outage ended the session: %v", err)
		}
	})
}

// TestStartRefusesOutsiders: Start never creates a session for someone in
// no allowed org.
func TestStartRefusesOutsiders(t *testing.T) {
	f := newFixture(t)
	tok, err := f.gh.IssueToken("erin", "read:org", "user:email")
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.client.FetchIdentity(context.Background(), tok, f.m.AllowedOrgs())
	if err != nil {
		t.Fatal(err)
	}
	var na *session.NotAdmittedError
	if _, err := f.m.Start(context.Background(), tok, id); !errors.As(err, &na) {
		t.Fatalf("Start for erin: %v", err)
	}
}

// TestHostOnlyCookiesOnHTTPS: on an https issuer the renewal cookie is a
// __Host- cookie (Secure, Path=/, no Domain), so a sibling subdomain
// cannot plant one.
func TestHostOnlyCookiesOnHTTPS(t *testing.T) {
	f := newFixture(t)
	st := f.start(t)
	rec := httptest.NewRecorder()
	f.m.SetCookies(rec, httptest.NewRequest(http.MethodGet, issuer+"/", nil), st.Token, st.SID)
	var found bool
	for _, c := range rec.Result().Cookies() {
		if c.Value != st.SID {
			continue
		}
		found = true
		if c.Name != "__Host-ghbroker_sid" || !c.Secure || c.Path != "/" || c.Domain != "" {
			t.Errorf("renewal cookie %+v", c)
		}
	}
	if !found {
		t.Fatal("no renewal cookie")
	}
}

// TestSealKeyOutsideTheStore: with a seal key given outside the store, new
// GitHub tokens are sealed with it, so the store alone (a leaked file or
// backup) cannot open them; sessions sealed before with the store's key
// keep renewing.
func TestSealKeyOutsideTheStore(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	before := f.start(t) // sealed with the store's key
	outside := make([]byte, 32)
	for i := range outside {
		outside[i] = byte(i)
	}
	withKey := func(key []byte) *session.Manager {
		km, err := keys.NewManager(ctx, f.store, keys.Options{Algorithm: keys.ES256, Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		m, err := session.New(ctx, session.Config{
			Issuer: issuer, Signer: km, Verifier: f.verifier, Store: f.store, GitHub: f.client,
			AllowedOrgs: []string{"acme"}, SealKey: key, Now: f.clock.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	f.m = withKey(outside)
	if _, err := f.m.Reread(ctx, before.Session); err != nil {
		t.Fatalf("a session sealed with the store's key no longer renews: %v", err)
	}
	after := f.start(t) // sealed with the outside key
	if _, err := f.m.Reread(ctx, after.Session); err != nil {
		t.Fatalf("renewal with the outside key: %v", err)
	}
	storeOnly := withKey(nil)
	if _, err := storeOnly.Reread(ctx, after.Session); !errors.Is(err, session.ErrGitHubToken) {
		t.Errorf("the store's key opened a token sealed with the outside key: %v", err)
	}
}

// TestRevocationSources: sign-out revokes the session's tokens and a
// subject revocation refuses what was minted before it, while a token
// minted right after it — one millisecond later and in the same
// millisecond as the revocation — is good: renewal after a webhook does not loop.
func TestRevocationSources(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	set := revocation.New(revocation.Options{Now: f.clock.Now})
	km, err := keys.NewManager(ctx, f.store, keys.Options{Algorithm: keys.ES256, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.m, err = session.New(ctx, session.Config{
		Issuer: issuer, Signer: km, Verifier: f.verifier, Store: f.store, GitHub: f.client,
		AllowedOrgs: []string{"acme"}, Revocations: set, Now: f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	current := func(tok string) bool {
		req := httptest.NewRequest(http.MethodGet, issuer+"/", nil)
		req.AddCookie(&http.Cookie{Name: "_ghbroker", Value: tok})
		return f.m.Current(req) != nil
	}
	st := f.start(t)
	if !current(st.Token) {
		t.Fatal("a fresh session is not current")
	}
	f.clock.Advance(time.Millisecond) // same second, one millisecond later
	f.m.RevokeSubject(st.Session.Subject, "webhook")
	if current(st.Token) {
		t.Error("a token minted before its subject was revoked is current")
	}
	sess, err := f.m.Reread(ctx, st.Session)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := f.m.Mint(sess)
	if err != nil {
		t.Fatal(err)
	}
	if !current(renewed) {
		t.Error("the token renewed in the same millisecond as the revocation is refused: renewal would loop")
	}
	f.m.End(ctx, st.Session.ID, "logout")
	if current(renewed) || set.Len() != 2 {
		t.Errorf("after sign-out: current %v, %d revocations", current(renewed), set.Len())
	}
}

// TestRecheck: without webhooks, the background recheck re-reads GitHub
// for sessions older than the period: a team change refuses the tokens
// minted before it, and a person who left every allowed org loses the
// session; a session read recently is left alone.
func TestRecheck(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	set := revocation.New(revocation.Options{Now: f.clock.Now})
	km, err := keys.NewManager(ctx, f.store, keys.Options{Algorithm: keys.ES256, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.m, err = session.New(ctx, session.Config{
		Issuer: issuer, Signer: km, Verifier: f.verifier, Store: f.store, GitHub: f.client,
		AllowedOrgs: []string{"acme"}, Revocations: set, Now: f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := f.start(t)
	if n, err := f.m.Recheck(ctx, time.Minute, 0); err != nil || n != 0 {
		t.Fatalf("a fresh session was rechecked: %d, %v", n, err)
	}
	fx := githubfake.DefaultFixture()
	for i := range fx.Orgs {
		for j := range fx.Orgs[i].Teams {
			tm := &fx.Orgs[i].Teams[j]
			tm.Members = slices.DeleteFunc(tm.Members, func(m string) bool { return m == "alice" })
		}
	}
	f.gh.SetFixture(fx)
	f.clock.Advance(2 * time.Minute)
	if n, err := f.m.Recheck(ctx, time.Minute, 0); err != nil || n != 1 {
		t.Fatalf("after a team change: %d changed, %v", n, err)
	}
	if !set.Revoked(st.Session.Subject, st.Session.ID, revocation.Millis(f.clock.Now())-1) {
		t.Error("the team change did not revoke the tokens minted before it")
	}
	fx.RemoveMember("acme", "alice")
	f.gh.SetFixture(fx)
	f.clock.Advance(2 * time.Minute)
	if n, err := f.m.Recheck(ctx, time.Minute, 0); err != nil || n != 1 {
		t.Fatalf("after leaving the org: %d changed, %v", n, err)
	}
	if _, err := f.store.GetSession(ctx, st.Session.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the session of someone in no allowed org survived the recheck: %v", err)
	}
}
