package githubfake

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestTokenResponseWireFormat(t *testing.T) {
	tests := []struct {
		accept, wantType string
		want             *regexp.Regexp
	}{
		{"", "application/x-www-form-urlencoded", regexp.MustCompile(`^access_token=gho_\w{36}&scope=read%3Aorg%2Cuser%3Aemail&token_type=bearer$`)},
		{"application/json", "application/json", regexp.MustCompile(`^\{"access_token":"gho_\w{36}","scope":"read:org,user:email","token_type":"bearer"\}$`)},
		{"application/xml", "application/xml", regexp.MustCompile(`^<OAuth><access_token>gho_\w{36}</access_token><scope>read:org,user:email</scope><token_type>bearer</token_type></OAuth>$`)},
	}
	for _, tc := range tests {
		t.Run("accept="+tc.accept, func(t *testing.T) {
			fake, ts := newFake(t, nil, Options{})
			fake.SetAutoApprove("alice")
			loc := follow(t, ts.URL+"/login/oauth/authorize?client_id=ghbroker-dev&scope=read:org+user:email")
			form := url.Values{"client_id": {devClientID}, "client_secret": {devSecret}, "code": {loc.Query().Get("code")}}
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/login/oauth/access_token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
				t.Errorf("Content-Type = %q, want %s", ct, tc.wantType)
			}
			if !tc.want.Match(body) {
				t.Errorf("body = %s, want match %s", body, tc.want)
			}
		})
	}
}

// exchangeErr exchanges code and returns the *oauth2.RetrieveError.
func exchangeErr(t *testing.T, cfg *oauth2.Config, code string, opts ...oauth2.AuthCodeOption) *oauth2.RetrieveError {
	t.Helper()
	_, err := cfg.Exchange(context.Background(), code, opts...)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("Exchange error = %v, want *oauth2.RetrieveError", err)
	}
	return re
}

func TestTokenErrors(t *testing.T) {
	clock := newClock()
	tests := []struct {
		name     string
		mutate   func(cfg *oauth2.Config, code *string, opts *[]oauth2.AuthCodeOption)
		pkce     bool
		advance  time.Duration
		wantCode string
	}{
		{name: "wrong secret", mutate: func(c *oauth2.Config, _ *string, _ *[]oauth2.AuthCodeOption) { c.ClientSecret = "nope" }, wantCode: "incorrect_client_credentials"},
		{name: "unknown client", mutate: func(c *oauth2.Config, _ *string, _ *[]oauth2.AuthCodeOption) { c.ClientID = "nope" }, wantCode: "incorrect_client_credentials"},
		{name: "unknown code", mutate: func(_ *oauth2.Config, code *string, _ *[]oauth2.AuthCodeOption) { *code = "0123456789abcdef0123" }, wantCode: "bad_verification_code"},
		{name: "redirect_uri differs from authorize", mutate: func(c *oauth2.Config, _ *string, _ *[]oauth2.AuthCodeOption) { c.RedirectURL = devCallback + "/other" }, wantCode: "redirect_uri_mismatch"},
		{name: "code expired after 10 minutes", advance: 10 * time.Minute, wantCode: "bad_verification_code"},
		{name: "pkce wrong verifier", pkce: true, mutate: func(_ *oauth2.Config, _ *string, o *[]oauth2.AuthCodeOption) {
			*o = []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}
		}, wantCode: "bad_verification_code"},
		{name: "pkce missing verifier", pkce: true, mutate: func(_ *oauth2.Config, _ *string, o *[]oauth2.AuthCodeOption) { *o = nil }, wantCode: "bad_verification_code"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, ts := newFake(t, nil, Options{Now: clock.Now})
			fake.SetAutoApprove("bob")
			cfg := oauthConfig(ts, oauth2.AuthStyleInParams)
			verifier := oauth2.GenerateVerifier()
			var authOpts, exOpts []oauth2.AuthCodeOption
			if tc.pkce {
				authOpts = append(authOpts, oauth2.S256ChallengeOption(verifier))
				exOpts = append(exOpts, oauth2.VerifierOption(verifier))
			}
			code := follow(t, cfg.AuthCodeURL("s", authOpts...)).Query().Get("code")
			clock.Advance(tc.advance)
			if tc.mutate != nil {
				tc.mutate(cfg, &code, &exOpts)
			}
			re := exchangeErr(t, cfg, code, exOpts...)
			if re.ErrorCode != tc.wantCode {
				t.Errorf("ErrorCode = %q, want %q (%v)", re.ErrorCode, tc.wantCode, re)
			}
			if re.Response.StatusCode != http.StatusOK {
				t.Errorf("HTTP status = %d, want 200 (GitHub sends token errors with 200)", re.Response.StatusCode)
			}
			if re.ErrorURI == "" || re.ErrorDescription == "" {
				t.Errorf("error_description/error_uri missing: %+v", re)
			}
		})
	}
}

func TestCodeExpiryBoundary(t *testing.T) {
	clock := newClock()
	fake, ts := newFake(t, nil, Options{Now: clock.Now})
	fake.SetAutoApprove("alice")
	cfg := oauthConfig(ts, oauth2.AuthStyleInParams)
	code := follow(t, cfg.AuthCodeURL("s")).Query().Get("code")
	clock.Advance(10*time.Minute - time.Second)
	if _, err := cfg.Exchange(context.Background(), code); err != nil {
		t.Fatalf("code 1s before expiry refused: %v", err)
	}
}

func TestCodeIsSingleUse(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	fake.SetAutoApprove("alice")
	cfg := oauthConfig(ts, oauth2.AuthStyleInParams, "read:org")
	code := follow(t, cfg.AuthCodeURL("s")).Query().Get("code")
	if _, err := cfg.Exchange(context.Background(), code); err != nil {
		t.Fatalf("first exchange: %v", err)
	}
	re := exchangeErr(t, cfg, code)
	if re.ErrorCode != "bad_verification_code" || re.ErrorDescription != "The code passed is incorrect or expired." {
		t.Errorf("reuse: got %q %q", re.ErrorCode, re.ErrorDescription)
	}
	if re.Response.StatusCode != http.StatusOK {
		t.Errorf("reuse: HTTP %d, want 200", re.Response.StatusCode)
	}
}

func TestUnverifiedPrimaryEmailGetsNoToken(t *testing.T) {
	f := testFixture()
	f.Users[0].Emails[0].Verified = false
	fake, ts := newFake(t, f, Options{})
	fake.SetAutoApprove(f.Users[0].Login)
	cfg := oauthConfig(ts, oauth2.AuthStyleInParams)
	code := follow(t, cfg.AuthCodeURL("s")).Query().Get("code")
	if re := exchangeErr(t, cfg, code); re.ErrorCode != "unverified_user_email" {
		t.Errorf("ErrorCode = %q, want unverified_user_email", re.ErrorCode)
	}
}

func TestRevocation(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	a1 := signIn(t, fake, ts, "alice", "read:org")
	a2 := signIn(t, fake, ts, "alice")
	b := signIn(t, fake, ts, "bob")
	if !fake.RevokeToken(a1) {
		t.Fatal("RevokeToken: token not found")
	}
	check := func(tok string, want int) {
		t.Helper()
		resp := apiGet(t, nil, ts.URL+"/user", tok)
		wantStatus(t, resp, want)
		if want == http.StatusUnauthorized {
			e := decode[apiError](t, resp)
			if e != (apiError{"Bad credentials", "https://docs.github.com/rest", "401"}) {
				t.Errorf("401 body = %+v", e)
			}
		}
	}
	check(a1, http.StatusUnauthorized)
	check(a2, http.StatusOK)
	if n := fake.RevokeUser("ALICE"); n != 1 {
		t.Errorf("RevokeUser revoked %d tokens, want 1", n)
	}
	check(a2, http.StatusUnauthorized)
	check(b, http.StatusOK)
}

func TestTokenEndpointQueryParamsAndGrantType(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	fake.SetAutoApprove("alice")
	code := follow(t, ts.URL+"/login/oauth/authorize?client_id=ghbroker-dev").Query().Get("code")
	post := func(q url.Values) url.Values {
		t.Helper()
		resp, err := http.Post(ts.URL+"/login/oauth/access_token?"+q.Encode(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		v, err := url.ParseQuery(string(b))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d body %s", resp.StatusCode, b)
		}
		return v
	}
	creds := url.Values{"client_id": {devClientID}, "client_secret": {devSecret}}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"ghr_x"}}
	for k, v := range creds {
		refresh[k] = v
	}
	if got := post(refresh).Get("error"); got != "unsupported_grant_type" {
		t.Errorf("refresh grant: error = %q, want unsupported_grant_type", got)
	}
	creds.Set("code", code)
	if got := post(creds); !strings.HasPrefix(got.Get("access_token"), "gho_") || got.Get("scope") != "" {
		t.Errorf("query-param exchange: %v", got)
	}
}
