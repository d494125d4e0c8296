package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ghbroker/ghbroker/authz"
	"github.com/ghbroker/ghbroker/authz/verify"
	"github.com/ghbroker/ghbroker/broker"
	"github.com/ghbroker/ghbroker/broker/device"
	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/broker/oidc"
	"github.com/ghbroker/ghbroker/broker/session"
	"github.com/ghbroker/ghbroker/broker/signin"
	"github.com/ghbroker/ghbroker/internal/admin"
	"github.com/ghbroker/ghbroker/internal/config"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/store/bolt"
)

// maxTokenLifetime is the longest lifetime of any token the broker signs:
// a retired key stays published that long.
func maxTokenLifetime(cfg *config.Config) time.Duration {
	d := max(cfg.Session.TTL.D(), config.DefaultTokenTTL)
	for _, c := range cfg.Clients {
		d = max(d, c.TokenTTL.D())
	}
	return d
}

func cmdServe(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "serve")
	path := fs.String("config", "", "config file (YAML)")
	logFormat := fs.String("log-format", "", "log format: json or text (overrides log.format)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageErr("serve needs --config FILE")
	}
	cfg, err := config.Load(*path, e.lookupEnv)
	if err != nil {
		return configErr(err)
	}
	logger, err := newLogger(e.stderr, cfg.Log, *logFormat)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, cfg, logger, appOptions{})
	if err != nil {
		return err
	}
	return a.run(ctx)
}

func newLogger(w io.Writer, l config.Log, formatFlag string) (*slog.Logger, error) {
	format := l.Format
	if formatFlag != "" {
		format = formatFlag
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.Level)); err != nil {
		return nil, usageErr("log level %q: %v", l.Level, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, usageErr("log format must be json or text, not %q", format)
}

// app is a running broker: the store, keys and HTTP surface built from one
// config.
type app struct {
	cfg    *config.Config
	log    *slog.Logger
	store  *bolt.Store
	keys   *keys.Manager
	broker *broker.Server
	reg    *prometheus.Registry
	checks *checks
	// ready is closed once every listener is bound (used by dev and tests).
	ready chan struct{}
	// addrs are the bound listener addresses, by config key.
	addrs map[string]string
}

// openStore opens the bolt store and turns its typed failures into exit
// codes and one-sentence messages.
func openStore(path string, logger *slog.Logger) (*bolt.Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, runtimeErr(fmt.Errorf("cannot create the store directory: %w", err))
	}
	st, err := bolt.Open(path, bolt.Options{Timeout: 2 * time.Second, Logger: logger})
	if err != nil {
		return nil, runtimeErr(err)
	}
	return st, nil
}

func keyOptions(cfg *config.Config, logger *slog.Logger) keys.Options {
	return keys.Options{
		Algorithm:        cfg.Keys.Algorithm,
		RotateEvery:      cfg.Keys.RotateEvery.D(),
		MaxTokenLifetime: maxTokenLifetime(cfg),
		Logger:           logger,
	}
}

// appOptions are what `dev` adds to a config-built app.
type appOptions struct {
	// githubHTTP, when set, is the HTTP client for GitHub calls.
	githubHTTP *http.Client
	// extraHosts are served by their own handlers (emulator, demo apps).
	extraHosts map[string]http.Handler
}

func newApp(ctx context.Context, cfg *config.Config, logger *slog.Logger, ao appOptions) (*app, error) {
	st, err := openStore(cfg.Storage.Bolt.Path, logger)
	if err != nil {
		return nil, err
	}
	a, err := buildApp(ctx, cfg, logger, ao, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

func buildApp(ctx context.Context, cfg *config.Config, logger *slog.Logger, ao appOptions, st *bolt.Store) (*app, error) {
	km, err := keys.NewManager(ctx, st, keyOptions(cfg, logger))
	if err != nil {
		return nil, runtimeErr(err)
	}
	verifier, err := verify.New(verify.Options{
		Issuer: cfg.Issuer, Keys: km, IDTokenAudiences: cfg.Authz.IDTokenAudiences,
	})
	if err != nil {
		return nil, runtimeErr(err)
	}
	gh, err := github.New(github.Config{
		ClientID: cfg.GitHub.ClientID, ClientSecret: cfg.GitHub.ClientSecret,
		WebURL: cfg.GitHub.URL, APIURL: cfg.GitHub.APIURL, RedirectURL: cfg.Issuer + "/callback",
		HTTPClient: ao.githubHTTP, Logger: logger,
	})
	if err != nil {
		return nil, configErr(fmt.Errorf("github: %w", err))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sessions, err := session.New(ctx, session.Config{
		Issuer: cfg.Issuer, Signer: km, Verifier: verifier, Store: st, GitHub: gh,
		AllowedOrgs: cfg.GitHub.AllowedOrgs, GroupsFormat: cfg.GitHub.GroupsFormat,
		CookieName: cfg.Session.CookieName, CookieDomain: cfg.Session.CookieDomain,
		TTL: cfg.Session.TTL.D(), MaxAge: cfg.Session.MaxAge.D(), PolicyGroups: policyGroups(cfg.Policy),
		Logger: logger,
	})
	if err != nil {
		return nil, runtimeErr(err)
	}
	ch, err := newChecks(cfg, verifier, km, reg, logger, sessions.Slide)
	if err != nil {
		return nil, err
	}
	clients := oidcClients(cfg.Clients)
	dev, err := device.New(ctx, device.Config{
		Issuer: cfg.Issuer, Sessions: sessions, Store: st, Clients: clients, Logger: logger,
	})
	if err != nil {
		return nil, runtimeErr(err)
	}
	provider, err := oidc.New(oidc.Config{
		Issuer: cfg.Issuer, Keys: km, Verifier: verifier, Sessions: sessions, Store: st,
		Clients: clients, DeviceGrant: dev, JWKSMaxAge: keys.JWKSMaxAge(cfg.Keys.RotateEvery.D()), Logger: logger,
	})
	if err != nil {
		return nil, runtimeErr(err)
	}
	signIn, err := signin.New(signin.Config{
		Issuer: cfg.Issuer, Sessions: sessions, Store: st, GitHub: gh,
		AllowedRedirectDomains: cfg.Session.AllowedRedirectDomains, EndSession: provider, Logger: logger,
	})
	if err != nil {
		return nil, runtimeErr(err)
	}
	b, err := broker.New(broker.Config{
		Keys: km, Store: st, Handlers: []broker.Handler{signIn, provider, dev},
		Authz: ch.prefixed, ExtraHosts: ao.extraHosts, Registry: reg, Gatherer: mainGatherer(cfg, reg), Logger: logger,
	})
	if err != nil {
		return nil, runtimeErr(err)
	}
	return &app{cfg: cfg, log: logger, store: st, keys: km, broker: b, reg: reg, checks: ch,
		ready: make(chan struct{}), addrs: map[string]string{}}, nil
}

// run serves until ctx is done, then drains and closes the store.
func (a *app) run(ctx context.Context) error {
	defer a.store.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sock := admin.SocketPath(a.store.Path())
	adminL, err := admin.Listen(sock)
	if err != nil {
		return runtimeErr(err)
	}
	defer os.Remove(sock)
	ls := []*listener{
		{name: "listen", addr: a.cfg.Listen, http: newHTTPServer(withChecks(a.broker, a.checks))},
		{name: "admin socket", addr: sock, http: newHTTPServer(&admin.Handler{Keys: a.keys, Logger: a.log}), netLn: adminL},
	}
	ls = append(ls, a.checks.listeners(a.cfg)...)
	ls = append(ls, metricsListeners(a.cfg, a.reg)...)

	var wg sync.WaitGroup
	wg.Go(func() { a.keys.Run(ctx, rotationCheckInterval(a.cfg)) })
	wg.Go(func() { a.store.RunSweeper(ctx, time.Minute) })
	err = serveAll(ctx, a.log, a.cfg.Listeners, ls, func() {
		a.addrs["listen"] = ls[0].netLn.Addr().String()
		a.log.Info("ghbroker serving", "version", version, "issuer", a.cfg.Issuer, "listen", a.addrs["listen"],
			"authz_listen", a.cfg.Authz.Listen, "grpc_listen", a.cfg.Authz.GRPCListen, "metrics_listen", a.cfg.Metrics.Listen,
			"store", a.store.Path(), "admin_socket", sock)
		close(a.ready)
	})
	cancel()
	wg.Wait()
	a.log.Info("stopped")
	return err
}

// oidcClients turns the configured relying parties into OIDC clients.
func oidcClients(cs []config.Client) []oidc.Client {
	out := make([]oidc.Client, 0, len(cs))
	for _, c := range cs {
		out = append(out, oidc.Client{
			ID: c.ID, Secret: c.Secret, Public: c.Public, Name: c.Name,
			RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			Scopes: c.Scopes, GrantTypes: c.GrantTypes, AlwaysIssueRefreshToken: c.AlwaysIssueRefreshToken, TokenTTL: c.TokenTTL.D(),
			GatewayAccess: c.GatewayAccess,
		})
	}
	return out
}

// policyGroups lists every group some policy rule names.
func policyGroups(p authz.PolicyConfig) []string {
	var out []string
	for _, r := range p.Rules {
		out = append(out, r.Allow.Groups...)
	}
	return out
}

// rotationCheckInterval is how often the key loop checks whether a rotation
// is due and reloads keys changed by another process.
func rotationCheckInterval(cfg *config.Config) time.Duration {
	return min(cfg.Keys.RotateEvery.D()/10, 30*time.Second)
}
