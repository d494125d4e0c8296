package githubfake_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"golang.org/x/oauth2"

	"github.com/ghbroker/ghbroker/internal/githubfake"
)

// A test signs alice in through the web flow with golang.org/x/oauth2 and
// reads her teams from the GHES-style API.
func Example() {
	fake := githubfake.New(githubfake.DefaultFixture(), githubfake.Options{})
	ts := httptest.NewServer(fake)
	defer ts.Close()
	fake.SetAutoApprove("alice")

	cfg := &oauth2.Config{
		ClientID:     "ghbroker-dev",
		ClientSecret: "ghbroker-dev-secret",
		RedirectURL:  "http://localhost:8080/callback",
		Scopes:       []string{"read:org", "user:email"},
		Endpoint: oauth2.Endpoint{
			AuthURL:   ts.URL + "/login/oauth/authorize",
			TokenURL:  ts.URL + "/login/oauth/access_token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	verifier := oauth2.GenerateVerifier()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(cfg.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()

	tok, err := cfg.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		panic(err)
	}
	fmt.Println("scope:", tok.Extra("scope"))

	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v3/user/teams", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, fake.Calls()["GET /user/teams"])
	// Output:
	// scope: read:org,user:email
	// 200 OK 1
}
