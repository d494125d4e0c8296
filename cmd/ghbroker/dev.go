package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ghbroker/ghbroker/internal/config"
	"github.com/ghbroker/ghbroker/internal/githubfake"
)

// cmdDev runs the broker with the embedded GitHub emulator, two demo
// services behind the authorization check and a temporary store, all on one
// loopback port. Browsers resolve every name under .localhost to loopback,
// so the broker is ghbroker.localhost, the demo services are
// app.ghbroker.localhost and admin.ghbroker.localhost (one parent domain for
// the SSO cookie: browsers refuse cookies for "localhost" itself), and the
// emulator is github.localhost.
func cmdDev(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "dev")
	port := fs.Int("port", 8080, "port on localhost")
	autoLogin := fs.String("auto-login", "", "sign in as this fixture user without showing the picker")
	fixturePath := fs.String("fixture", "", "GitHub emulator fixture (YAML); default: the built-in demo users")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fx := githubfake.DefaultFixture()
	if *fixturePath != "" {
		var err error
		if fx, err = githubfake.ParseFixtureFile(*fixturePath); err != nil {
			return configErr(err)
		}
	}
	dir, err := os.MkdirTemp("", "ghbroker-dev-")
	if err != nil {
		return runtimeErr(err)
	}
	defer os.RemoveAll(dir)

	addr := fmt.Sprintf("127.0.0.1:%d", *port)
	host := func(name string) string { return fmt.Sprintf("%s:%d", name, *port) }
	issuer := "http://" + host(devDomain)
	ghHost := host("github.localhost")
	for i := range fx.Apps {
		fx.Apps[i].CallbackURL = issuer + "/callback"
	}
	cfg, err := devConfig(dir, addr, issuer, "http://"+ghHost, fx)
	if err != nil {
		return err
	}
	logger, err := newLogger(e.stderr, config.Log{Format: "text", Level: "info"}, "")
	if err != nil {
		return err
	}
	gh := githubfake.New(fx, githubfake.Options{Logger: logger})
	if *autoLogin != "" {
		gh.SetAutoApprove(*autoLogin)
	}
	// The broker reaches the emulator over the same listener; *.localhost
	// names are not in every resolver, so dial loopback directly.
	ghClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
	appURL, adminURL := "http://"+host("app."+devDomain)+"/", "http://"+host("admin."+devDomain)+"/"
	links := []demoLink{{"app", appURL}, {"admin", adminURL}}
	appDemo := &demoApp{title: "app", requires: "members of " + fx.Orgs[0].Login, issuer: issuer, others: links}
	adminDemo := &demoApp{title: "admin", requires: "members of " + devAdminTeam(fx), issuer: issuer, others: links}
	hosts := map[string]http.Handler{ghHost: gh, host("app." + devDomain): appDemo, host("admin." + devDomain): adminDemo}
	a, err := newApp(ctx, cfg, logger, appOptions{githubHTTP: ghClient, extraHosts: hosts})
	if err != nil {
		return err
	}
	appDemo.check, adminDemo.check = a.checks.prefixed, a.checks.prefixed
	go func() {
		select {
		case <-a.ready:
			printDevBanner(e, issuer, ghHost, appURL, adminURL, dir, fx)
		case <-ctx.Done():
		}
	}()
	return a.run(ctx)
}

// devDomain is the parent domain of the dev broker and demo services.
const devDomain = "ghbroker.localhost"

// devAdminTeam is the team the admin demo service admits: acme/admins in
// the built-in fixture, else the first team of the first org.
func devAdminTeam(fx *githubfake.Fixture) string {
	o := fx.Orgs[0]
	for _, t := range o.Teams {
		if t.Slug == "admins" {
			return o.Login + "/admins"
		}
	}
	if len(o.Teams) > 0 {
		return o.Login + "/" + o.Teams[0].Slug
	}
	return o.Login
}

// devGrafanaSecret is the demo Grafana client's secret in `ghbroker dev`.
const devGrafanaSecret = "grafana-dev-secret-not-for-production"

// devConfig is the configuration `ghbroker dev` runs with, validated like a
// file would be.
func devConfig(dir, addr, issuer, githubURL string, fx *githubfake.Fixture) (*config.Config, error) {
	var orgs []string
	for _, o := range fx.Orgs {
		orgs = append(orgs, o.Login)
	}
	if len(orgs) > 1 {
		orgs = orgs[:1] // the first org is allowed, so the others show what a refusal looks like
	}
	src := fmt.Sprintf(`issuer: %s
listen: %q
log: {format: text}
storage:
  bolt: {path: %s}
github:
  client_id: %s
  client_secret: %s
  url: %s
  api_url: %s/api/v3
  allowed_orgs: [%s]
session:
  cookie_domain: .%s
  allowed_redirect_domains: [.%s]
keys:
  algorithm: ES256
policy:
  rules:
    - hosts: [app.%s]
      allow: {groups: [%s]}
    - hosts: [admin.%s]
      allow: {groups: [%s]}
clients:
  - id: grafana
    name: Grafana on localhost:3000
    secret: %s
    redirect_uris: [http://localhost:3000/login/generic_oauth]
    post_logout_redirect_uris: [http://localhost:3000/login]
  - id: kubelogin
    name: kubectl (kubelogin)
    public: true
    redirect_uris: [http://localhost:8000, http://localhost:18000]
    grant_types: [authorization_code, refresh_token, device_code]
  - id: cli
    name: ghbroker token (command line)
    public: true
    grant_types: [device_code, refresh_token]
    gateway_access: true
`, issuer, addr, filepath.Join(dir, "ghbroker.db"), fx.Apps[0].ClientID, fx.Apps[0].ClientSecret, githubURL, githubURL, strings.Join(orgs, ", "),
		devDomain, devDomain, devDomain, orgs[0], devDomain, devAdminTeam(fx), devGrafanaSecret)
	cfg, err := config.Parse("ghbroker dev", []byte(src), nil)
	if err != nil {
		return nil, configErr(err)
	}
	return cfg, nil
}

func printDevBanner(e env, issuer, ghHost, appURL, adminURL, dir string, fx *githubfake.Fixture) {
	var users []string
	for _, u := range fx.Users {
		users = append(users, u.Login)
	}
	fmt.Fprintf(e.stdout, `
ghbroker dev is running. Open:

  %s/    sign in (pick a GitHub user: %s)
  %s    a demo service open to %s
  %s    a demo service open to %s
  http://%s/    the GitHub emulator
  %s/.well-known/openid-configuration

Browsers resolve *.localhost to this machine; other tools may need
  127.0.0.1 %s app.%s admin.%s github.localhost
in /etc/hosts.

Only members of %s may sign in; the other users show the refusal page.
OIDC clients: grafana (secret %s, redirect http://localhost:3000/login/generic_oauth)
              kubelogin (public, PKCE, redirect http://localhost:8000; or --grant-type=device-code)
              cli (public, device flow only). Try:
  ghbroker token --issuer %s --client-id cli
Temporary store: %s (deleted on exit). Press Ctrl-C to stop.
`, issuer, strings.Join(users, ", "), appURL, fx.Orgs[0].Login, adminURL, devAdminTeam(fx), ghHost, issuer,
		devDomain, devDomain, devDomain, fx.Orgs[0].Login, devGrafanaSecret, issuer, dir)
}
