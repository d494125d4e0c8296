package github_test

import (
	"fmt"
	"log"

	"github.com/ghbroker/ghbroker/broker/github"
)

func ExampleIdentity_Groups() {
	id := &github.Identity{
		Login: "octocat",
		Orgs:  []string{"acme", "hobby"},
		Teams: []github.Team{
			{Org: "acme", Slug: "sre", Parent: "platform"},
			{Org: "hobby", Slug: "band"},
		},
	}
	fmt.Println(id.Groups([]string{"acme"}, github.GroupsFormatGitHub))
	fmt.Println(id.Groups([]string{"acme"}, github.GroupsFormatDex))
	// Output:
	// [acme acme/platform acme/sre]
	// [acme acme:platform acme:sre]
}

func ExampleClient_AuthCodeURL() {
	c, err := github.New(github.Config{
		ClientID:     "Iv1.abc",
		ClientSecret: "secret",
		WebURL:       "https://github.com",
		APIURL:       "https://api.github.com",
		RedirectURL:  "https://auth.example.com/callback",
	})
	if err != nil {
		log.Fatal(err)
	}
	// The verifier comes from oauth2.GenerateVerifier and is kept, with
	// the state, until GitHub redirects back to /callback.
	fmt.Println(c.AuthCodeURL("st4te", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "octocat", false))
	// Output:
	// https://github.com/login/oauth/authorize?client_id=Iv1.abc&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&login=octocat&redirect_uri=https%3A%2F%2Fauth.example.com%2Fcallback&response_type=code&scope=read%3Aorg+user%3Aemail&state=st4te
}
