package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
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
	"github.com/ghbroker/ghbroker/broker/webhook"
	"github.com/ghbroker/ghbroker/internal/admin"
	"github.com/ghbroker/ghbroker/internal/config"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/revocation"
	"github.com/ghbroker/ghbroker/store"
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
	store  *engine
	keys   *keys.Manager
	broker *broker.Server
	reg    *prometheus.Registry
	checks *checks
	// backchannel tells relying parties of ended sessions.
	backchannel *oidc.Backchannel
	// webhooks applies GitHub deliveries (nil without a webhook secret).
	webhooks *webhook.Handler
	// feed serves the revocation set to authz replicas.
	feed *revocation.Publisher
	// revocations is the set the checks consult.
	revocations *revocations
	// sessions answer the admin socket's sessions commands.
	sessions *session.Manager
	// ready is closed once every listener is bound (used by dev and tests).
	ready chan struct{}
	// addrs are the bound listener addresses, by config key.
	addrs map[string]string
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
	reg := prometheus.NewRegistry()
	st, err := openEngine(ctx, cfg.Storage, logger, reg)
	if err != nil {
		return nil, err
	}
	a, err := buildApp(ctx, cfg, logger, ao, st, reg)
	if err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

func buildApp(ctx context.Context, cfg *config.Config, logger *slog.Logger, ao appOptions, st *engine, reg *prometheus.Registry) (*app, error) {
	// The engine's own value, so that the manager sees a keys.KeyWatcher.
	km, err := keys.NewManager(ctx, st.Store, keyOptions(cfg, logger))
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
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	backchannel, err := oidc.NewBackchannel(oidc.BackchannelConfig{
		Issuer: cfg.Issuer, Signer: km, Clients: oidcClients(cfg.Clients), Registry: reg, Logger: logger,
	})
	if err != nil {
		return nil, runtimeErr(err)
	}
	revs, err := newRevocations(ctx, reg, st.Store, logger) // the engine's own value: on etcd a store.RevocationWatcher
	if err != nil {
		return nil, runtimeErr(err)
	}
	sessions, err := session.New(ctx, session.Config{
		Issuer: cfg.Issuer, Signer: km, Verifier: verifier, Store: st, GitHub: gh,
		AllowedOrgs: cfg.GitHub.AllowedOrgs, GroupsFormat: cfg.GitHub.GroupsFormat,
		CookieName: cfg.Session.CookieName, CookieDomain: cfg.Session.CookieDomain,
		TTL: cfg.Session.TTL.D(), MaxAge: cfg.Session.MaxAge.D(), PolicyGroups: policyGroups(cfg.Policy),
		SealKey: cfg.Session.SealKey, Ended: backchannel,
		Revocations: revs, MaxTokenLifetime: maxTokenLifetime(cfg),
		Logger: logger,
	})
	if err != nil {
		return nil, runtimeErr(err)
	}
	ch, err := newChecks(cfg, verifier, km, reg, logger, sessions.Slide, revs.set)
	if err != nil {
		return nil, err
	}
	clients := oidcClients(cfg.Clients)
	// The device flow counts wrong user codes in the store, deployment-wide
	// on etcd: store.CounterStore is part of store.Store, so the engine
	// wrapper carries it (unlike an optional interface such as
	// store.RevocationWatcher, which it would hide).
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
	handlers := []broker.Handler{signIn, provider, dev}
	var hooks *webhook.Handler
	if cfg.GitHub.WebhookSecret != "" {
		hooks, err = webhook.New(webhook.Config{
			Secret: []byte(cfg.GitHub.WebhookSecret), AllowedOrgs: cfg.GitHub.AllowedOrgs,
			Deliveries: st, Applier: sessions, Registry: reg, Logger: logger,
		})
		if err != nil {
			return nil, runtimeErr(err)
		}
		handlers = append(handlers, hooks)
	}
	b, err := broker.New(broker.Config{
		Keys: km, Handlers: handlers,
		Authz: ch.prefixed, ExtraHosts: ao.extraHosts, Registry: reg, Gatherer: mainGatherer(cfg, reg), Logger: logger,
		HSTSMaxAge: hstsMaxAge(cfg),
	})
	if err != nil {
		return nil, runtimeErr(err)
	}
	return &app{cfg: cfg, log: logger, store: st, keys: km, broker: b, reg: reg, checks: ch, backchannel: backchannel,
		webhooks: hooks, feed: &revocation.Publisher{Issuer: cfg.Issuer, Set: revs.set, Signer: km, Logger: logger}, revocations: revs, sessions: sessions,
		ready: make(chan struct{}), addrs: map[string]string{}}, nil
}

// run serves until ctx is done, then drains and closes the store.
func (a *app) run(ctx context.Context) error {
	defer a.store.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	ls := []*listener{{name: "listen", addr: a.cfg.Listen, http: newHTTPServer(withChecks(a.broker, a.checks))}}
	var wg sync.WaitGroup
	sock := ""
	if b := a.store.bolt; b != nil {
		// One process holds the file: commands reach it over the admin
		// socket, and it sweeps expired records. etcd needs neither.
		sock = admin.SocketPath(b.Path())
		adminL, err := admin.Listen(sock)
		if err != nil {
			return runtimeErr(err)
		}
		defer os.Remove(sock)
		ls = append(ls, &listener{name: "admin socket", addr: sock, http: newHTTPServer(&admin.Handler{Keys: a.keys, Sessions: a.sessions, Logger: a.log}), netLn: adminL})
		wg.Go(func() { b.RunSweeper(ctx, time.Minute) })
	}
	ls = append(ls, a.checks.listeners(a.cfg)...)
	ls = append(ls, metricsListeners(a.cfg, a.reg)...)
	if addr := a.cfg.Revocations.Listen; addr != "" {
		ls = append(ls, &listener{name: "revocations.listen", addr: addr, http: newHTTPServer(a.feed)})
	}

	wg.Go(func() { a.keys.Run(ctx, rotationCheckInterval(a.cfg)) })
	if a.webhooks != nil {
		wg.Go(func() { a.webhooks.Run(ctx) })
	}
	wg.Go(func() { a.sessions.RunRecheck(ctx, a.cfg.Session.RecheckEvery.D()) })
	wg.Go(func() { a.revocations.run(ctx) })
	wg.Go(func() { a.backchannel.Run(ctx) })
	err := serveAll(ctx, a.log, a.cfg.Listeners, ls, func() {
		a.addrs["listen"] = ls[0].netLn.Addr().String()
		a.log.Info("ghbroker serving", "version", version, "issuer", a.cfg.Issuer, "listen", a.addrs["listen"],
			"authz_listen", a.cfg.Authz.Listen, "grpc_listen", a.cfg.Authz.GRPCListen, "metrics_listen", a.cfg.Metrics.Listen,
			"store", a.store.describe(), "admin_socket", sock)
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
			BackchannelLogoutURI: c.BackchannelLogoutURI, GatewayAccess: c.GatewayAccess,
		})
	}
	return out
}

// revocations is the broker's revocation set: kept in the store (so that
// it survives a restart and, on etcd, reaches every replica through a
// watch) and in memory (what the checks ask), counting what it is given.
type revocations struct {
	set   *revocation.Set
	store store.RevocationStore
	log   *slog.Logger
	added *prometheus.CounterVec

	mu   sync.Mutex
	seen map[string]int64 // entry ids in the set → expiry (Unix ms)
	// unstored are entries the store refused (it was down): enforced
	// here at once, and stored again every unstoredRetry until it takes
	// them, so that the other replicas learn them when it is back.
	unstored []store.Revocation
}

// unstoredRetry is how often entries the store refused are offered again;
// maxUnstored bounds how many wait (past it, the oldest are dropped from
// the queue, still enforced here).
const (
	unstoredRetry = 5 * time.Second
	maxUnstored   = 10_000
)

func newRevocations(ctx context.Context, reg prometheus.Registerer, st store.RevocationStore, log *slog.Logger) (*revocations, error) {
	r := &revocations{
		set: revocation.New(revocation.Options{}), store: st, log: log, seen: map[string]int64{},
		added: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ghbroker_revocations_total",
			Help: "Revocations recorded by this replica, by source (logout, renewal, webhook, operator).",
		}, []string{"source"}),
	}
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ghbroker_revocations_entries", Help: "Live entries in the revocation set.",
	}, func() float64 { return float64(r.set.Len()) })
	if err := registerCollectors(reg, r.added, size); err != nil {
		return nil, err
	}
	if err := r.reload(ctx); err != nil {
		return nil, fmt.Errorf("revocations: %w", err)
	}
	return r, nil
}

// reload adds the stored entries the set does not have yet.
func (r *revocations) reload(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	all, err := r.store.Revocations(rctx)
	if err != nil {
		return err
	}
	for _, e := range all {
		r.learn(e)
	}
	return nil
}

// learn puts a stored entry into the set once.
func (r *revocations) learn(e store.Revocation) {
	r.mu.Lock()
	_, dup := r.seen[e.ID]
	if !dup {
		r.seen[e.ID] = e.Expires.UnixMilli()
	}
	r.mu.Unlock()
	if dup || e.ID == "" {
		return
	}
	_, _ = r.set.Add(revocation.Entry{Subject: e.Subject, Session: e.Session, All: e.All, Before: e.Before,
		Expires: e.Expires.UnixMilli(), Source: e.Source})
}

// Add records e in the store and the set, and counts it by source.
func (r *revocations) Add(e revocation.Entry) (uint64, error) {
	rec := store.Revocation{ID: rand.Text(), Subject: e.Subject, Session: e.Session, All: e.All, Before: e.Before,
		Source: e.Source, Expires: time.UnixMilli(e.Expires)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.store.AddRevocation(ctx, rec)
	r.mu.Lock()
	r.seen[rec.ID] = e.Expires
	if err != nil {
		// Enforced here at once all the same; stored again until the
		// store takes it (retryUnstored), for the other replicas.
		r.log.Error("storing a revocation failed: this replica enforces it now, the others once the store takes it", "source", e.Source, "err", err)
		if len(r.unstored) >= maxUnstored {
			r.log.Error("too many revocations wait for the store: the oldest is now enforced only here", "waiting", len(r.unstored))
			r.unstored = r.unstored[1:]
		}
		r.unstored = append(r.unstored, rec)
	}
	r.mu.Unlock()
	seq, err := r.set.Add(e)
	if err == nil {
		switch e.Source {
		case "logout", "renewal", "webhook", "operator", "recheck":
			r.added.WithLabelValues(e.Source).Inc()
		default:
			r.added.WithLabelValues("other").Inc()
		}
	}
	return seq, err
}

// Revoked asks the set.
func (r *revocations) Revoked(sub, sid string, iat int64) bool { return r.set.Revoked(sub, sid, iat) }

// run follows the other replicas' entries (on a shared store) and drops
// expired ones once a minute.
func (r *revocations) run(ctx context.Context) {
	var watch <-chan store.Revocation
	if w, ok := r.store.(store.RevocationWatcher); ok {
		watch = w.WatchRevocations(ctx) // reports its establishment: then reload
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	retry := time.NewTicker(unstoredRetry)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
			r.retryUnstored(ctx)
		case e, ok := <-watch:
			if !ok {
				watch = nil
				continue
			}
			if e.ID == "" { // the watch is established: read what was added before it
				if err := r.reload(ctx); err != nil {
					r.log.Warn("reading the revocations failed", "err", err)
				}
				continue
			}
			r.learn(e)
		case <-t.C:
			r.set.Expire()
			now := time.Now().UnixMilli()
			r.mu.Lock()
			for id, exp := range r.seen {
				if exp <= now {
					delete(r.seen, id)
				}
			}
			r.mu.Unlock()
		}
	}
}

// retryUnstored offers the store the entries it refused, oldest first,
// until it refuses one again; expired ones are dropped.
func (r *revocations) retryUnstored(ctx context.Context) {
	r.mu.Lock()
	waiting := slices.Clone(r.unstored)
	r.mu.Unlock()
	if len(waiting) == 0 {
		return
	}
	done, now := map[string]bool{}, time.Now()
	for _, rec := range waiting {
		if rec.Expires.After(now) {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := r.store.AddRevocation(sctx, rec)
			cancel()
			if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
				break
			}
		}
		done[rec.ID] = true
	}
	r.mu.Lock()
	// Add may have queued more (or dropped the oldest) meanwhile.
	r.unstored = slices.DeleteFunc(r.unstored, func(rec store.Revocation) bool { return done[rec.ID] })
	left := len(r.unstored)
	r.mu.Unlock()
	if stored := len(done); stored > 0 {
		r.log.Info("revocations the store refused are stored now", "stored", stored, "waiting", left)
	}
}

// hstsMaxAge is the Strict-Transport-Security max-age to send: none for a
// plain-http (dev) issuer.
func hstsMaxAge(cfg *config.Config) time.Duration {
	if !strings.HasPrefix(cfg.Issuer, "https://") || cfg.Session.HSTSMaxAge == nil {
		return 0
	}
	return cfg.Session.HSTSMaxAge.D()
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
