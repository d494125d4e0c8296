package main

import (
	"context"
	"fmt"
	"log/slog"
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
//
// With --replicas N (N > 1) the broker is N replicas on an embedded etcd
// behind a gateway on that port (devreplicas.go), which a newcomer stops
// and starts from the terminal to watch nothing happen.
func cmdDev(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "dev")
	port := fs.Int("port", 8080, "port on localhost")
	autoLogin := fs.String("auto-login", "", "sign in as this fixture user without showing the picker")
	fixturePath := fs.String("fixture", "", "GitHub emulator fixture (YAML); default: the built-in demo users")
	replicas := fs.Int("replicas", 1, fmt.Sprintf("broker replicas (1-%d); more than one share an embedded etcd behind the gateway", maxDevReplicas))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *replicas < 1 || *replicas > maxDevReplicas {
		return usageErr("--replicas must be between 1 and %d, not %d", maxDevReplicas, *replicas)
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

	w := devWorld{dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", *port), fx: fx}
	host := func(name string) string { return fmt.Sprintf("%s:%d", name, *port) }
	w.issuer = "http://" + host(devDomain)
	w.ghHost = host("github.localhost")
	for i := range fx.Apps {
		fx.Apps[i].CallbackURL = w.issuer + "/callback"
	}
	if w.logger, err = newLogger(e.stderr, config.Log{Format: "text", Level: "info"}, ""); err != nil {
		return err
	}
	gh := githubfake.New(fx, githubfake.Options{Logger: w.logger})
	if *autoLogin != "" {
		gh.SetAutoApprove(*autoLogin)
	}
	// The broker reaches the emulator over the same listener; *.localhost
	// names are not in every resolver, so dial loopback directly.
	w.ghClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, w.addr)
		},
	}}
	// A connection dialled but never used would hold the listener's
	// shutdown for 5s (net/http waits that long for its first request).
	stop := context.AfterFunc(ctx, w.ghClient.CloseIdleConnections)
	defer stop()
	w.appURL, w.adminURL = "http://"+host("app."+devDomain)+"/", "http://"+host("admin."+devDomain)+"/"
	links := []demoLink{{"app", w.appURL}, {"admin", w.adminURL}}
	w.appDemo = &demoApp{title: "app", requires: "members of " + fx.Orgs[0].Login, issuer: w.issuer, others: links}
	w.adminDemo = &demoApp{title: "admin", requires: "members of " + devAdminTeam(fx), issuer: w.issuer, others: links}
	w.hosts = map[string]http.Handler{w.ghHost: gh, host("app." + devDomain): w.appDemo, host("admin." + devDomain): w.adminDemo}
	if *replicas > 1 {
		return runDevReplicas(ctx, e, w, *replicas)
	}

	cfg, err := devConfig(w, w.addr, "bolt: {path: "+filepath.Join(dir, "ghbroker.db")+"}")
	if err != nil {
		return err
	}
	a, err := newApp(ctx, cfg, w.logger, appOptions{githubHTTP: w.ghClient, extraHosts: w.hosts})
	if err != nil {
		return err
	}
	w.appDemo.check, w.adminDemo.check = a.checks.prefixed, a.checks.prefixed
	go func() {
		select {
		case <-a.ready:
			printDevBanner(e, w, "Temporary store: "+dir+" (deleted on exit). Press Ctrl-C to stop.\n")
		case <-ctx.Done():
		}
	}()
	return a.run(ctx)
}

// devWorld is what every `ghbroker dev` run sets up around the broker: the
// names on the one loopback port, the GitHub emulator and the demo
// services.
type devWorld struct {
	// dir is the temporary directory (the store), removed on exit.
	dir string
	// addr is the one loopback port's address.
	addr string
	// issuer is the broker's URL; ghHost the emulator's "host:port".
	issuer, ghHost string
	// appURL and adminURL are the demo services' pages.
	appURL, adminURL string
	fx               *githubfake.Fixture
	logger           *slog.Logger
	// ghClient is how the broker reaches the emulator.
	ghClient *http.Client
	// hosts are the emulator and demo services, by "host:port".
	hosts map[string]http.Handler
	// appDemo and adminDemo are the demo services; their check is set
	// once the broker is built.
	appDemo, adminDemo *demoApp
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

// devConfig is the configuration `ghbroker dev` runs with on listen, with
// storage the YAML of storage's one key, validated like a file would be.
func devConfig(w devWorld, listen, storage string) (*config.Config, error) {
	fx, githubURL := w.fx, "http://"+w.ghHost
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
  %s
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
`, w.issuer, listen, storage, fx.Apps[0].ClientID, fx.Apps[0].ClientSecret, githubURL, githubURL, strings.Join(orgs, ", "),
		devDomain, devDomain, devDomain, orgs[0], devDomain, devAdminTeam(fx), devGrafanaSecret)
	cfg, err := config.Parse("ghbroker dev", []byte(src), nil)
	if err != nil {
		return nil, configErr(err)
	}
	return cfg, nil
}

// printDevBanner tells what runs where; last ends it (the store and how
// to stop).
func printDevBanner(e env, w devWorld, last string) {
	fx := w.fx
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
%s`, w.issuer, strings.Join(users, ", "), w.appURL, fx.Orgs[0].Login, w.adminURL, devAdminTeam(fx), w.ghHost, w.issuer,
		devDomain, devDomain, devDomain, fx.Orgs[0].Login, devGrafanaSecret, w.issuer, last)
}
