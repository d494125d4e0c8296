package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/ghbroker/ghbroker/revocation"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/ghbroker/ghbroker/authz"
	"github.com/ghbroker/ghbroker/authz/verify"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/internal/config"
)

// checks are the authorization check's front doors built from one config.
type checks struct {
	// prefixed answers /authz and /authz/* on the main listener, telling
	// each check's dialect from its headers.
	prefixed http.Handler
	// fixed answer the main listener's check paths whose dialect is fixed
	// (fixedCheckPaths).
	fixed []fixedDoor
	// dedicated answers every path on authz.listen (nil when unset).
	dedicated http.Handler
	// grpc serves envoy.service.auth.v3.Authorization on authz.grpc_listen
	// (nil when unset).
	grpc *grpc.Server
}

// fixedCheckPaths are the main listener's check paths with a fixed
// dialect, beside the automatic /authz. They lie outside /authz/ so that no
// check Emissary sends with path_prefix /authz (always /authz + "/" + the
// original path) can be taken for one. /authz-envoy is a prefix
// (path_prefix: /authz-envoy); nginx and Traefik call the bare path.
var fixedCheckPaths = [...]struct {
	path    string
	dialect authz.Dialect
}{
	{"/authz-envoy", authz.DialectAmbassador},
	{"/authz-nginx", authz.DialectNginx},
	{"/authz-traefik", authz.DialectTraefik},
}

// fixedDoor is a check path of the main listener with its door.
type fixedDoor struct {
	path string
	h    http.Handler
}

// keyAge is what the key-set-age metric reads.
type keyAge interface{ LoadedAt() time.Time }

// newChecks builds the front doors. slide, when set, slides sessions that
// are close to expiry through the gRPC door (the broker has signing keys; a
// replica does not).
func newChecks(cfg *config.Config, v *verify.Verifier, keys keyAge, reg prometheus.Registerer, logger *slog.Logger,
	slide func(*claims.Claims, string) []string, rev authz.Revocations) (*checks, error) {
	policy, err := authz.CompilePolicy(cfg.Policy)
	if err != nil {
		return nil, configErr(fmt.Errorf("policy: %w", err))
	}
	m, err := authz.NewMetrics(reg)
	if err != nil {
		return nil, runtimeErr(err)
	}
	if err := m.ObserveVerifier(v.CacheStats); err != nil {
		return nil, runtimeErr(err)
	}
	if err := m.ObserveKeySetAge(keys.LoadedAt); err != nil {
		return nil, runtimeErr(err)
	}
	httpOpts := authz.HTTPOptions{
		Issuer: cfg.Issuer, Verifier: v, Policy: policy, CookieName: cfg.Session.CookieName,
		Prefix: checkPrefix, Metrics: m, Logger: logger, Revocations: rev,
		OmitToken: cfg.Authz.ForwardToken != nil && !*cfg.Authz.ForwardToken,
	}
	c := &checks{}
	if c.prefixed, err = authz.NewHTTPHandler(httpOpts); err != nil {
		return nil, runtimeErr(err)
	}
	for _, f := range fixedCheckPaths {
		opts := httpOpts
		opts.Prefix, opts.Dialect = f.path, f.dialect
		h, err := authz.NewHTTPHandler(opts)
		if err != nil {
			return nil, runtimeErr(err)
		}
		c.fixed = append(c.fixed, fixedDoor{path: f.path, h: h})
	}
	if cfg.Authz.Listen != "" {
		httpOpts.Prefix = ""
		if httpOpts.Dialect, err = authz.ParseDialect(cfg.Authz.Dialect); err != nil {
			return nil, configErr(err)
		}
		if c.dedicated, err = authz.NewHTTPHandler(httpOpts); err != nil {
			return nil, runtimeErr(err)
		}
	}
	if cfg.Authz.GRPCListen != "" {
		c.grpc, err = authz.NewGRPCServer(authz.GRPCOptions{
			Issuer: cfg.Issuer, Verifier: v, Policy: policy, CookieName: cfg.Session.CookieName, Metrics: m, Logger: logger,
			SessionRefresh: slide, ServerOptions: grpcLimits(cfg.Listeners), Revocations: rev,
			OmitToken: httpOpts.OmitToken,
		})
		if err != nil {
			return nil, runtimeErr(err)
		}
	}
	return c, nil
}

// listener is one thing run serves: an HTTP server or the gRPC server.
type listener struct {
	name  string
	addr  string
	http  *http.Server
	grpc  *grpc.Server
	netLn net.Listener
}

func (c *checks) listeners(cfg *config.Config) []*listener {
	var out []*listener
	if c.dedicated != nil {
		out = append(out, &listener{name: "authz.listen", addr: cfg.Authz.Listen, http: newHTTPServer(c.dedicated)})
	}
	if c.grpc != nil {
		out = append(out, &listener{name: "authz.grpc_listen", addr: cfg.Authz.GRPCListen, grpc: c.grpc})
	}
	return out
}

// newHTTPServer serves h; serveAll sets its timeouts. "OPTIONS *" goes to
// h too, instead of net/http's own 200: on a check listener every request
// is a check, and one that names no path is refused.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, MaxHeaderBytes: 64 << 10, DisableGeneralOptionsHandler: true}
}

// setLimits applies listeners.* to an HTTP server: a client that sends its
// headers or body slowly, reads slowly or idles is cut off.
func setLimits(s *http.Server, lim config.Listeners) {
	s.ReadHeaderTimeout = lim.ReadHeaderTimeout.D()
	s.ReadTimeout = lim.ReadTimeout.D()
	s.WriteTimeout = lim.WriteTimeout.D()
	s.IdleTimeout = lim.IdleTimeout.D()
}

// grpcLimits are listeners.* for the gRPC server: the handshake within the
// header timeout, a connection without streams closed when idle.
func grpcLimits(lim config.Listeners) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ConnectionTimeout(lim.ReadHeaderTimeout.D()),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: lim.IdleTimeout.D()}),
	}
}

// metricsListeners is metrics.listen, serving /metrics from g and
// nothing else, when the config sets it.
func metricsListeners(cfg *config.Config, g prometheus.Gatherer) []*listener {
	if cfg.Metrics.Listen == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	return []*listener{{name: "metrics.listen", addr: cfg.Metrics.Listen, http: newHTTPServer(mux)}}
}

// mainGatherer is what the main listener serves at /metrics: nothing
// (nil) when metrics.listen serves it instead.
func mainGatherer(cfg *config.Config, g prometheus.Gatherer) prometheus.Gatherer {
	if cfg.Metrics.Listen != "" {
		return nil
	}
	return g
}

// checkPrefix is where the main listener answers checks.
const checkPrefix = "/authz"

// withChecks sends the main listener's checks (every path that starts with
// /authz, as sent or decoded) to c's doors before next sees them: the
// broker's router and http.ServeMux clean paths, answering
// /authz/%2e%2e/admin with a redirect to /admin, and the check must decide
// on the path exactly as the gateway sent it. /authz-envoy, /authz-nginx
// and /authz-traefik (and what lies under them) go to the doors of fixed
// dialect, the rest of /authz… to the automatic one.
func withChecks(next http.Handler, c *checks) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.RequestURI, checkPrefix) && !strings.HasPrefix(r.URL.Path, checkPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		for _, f := range c.fixed {
			if underPath(r.RequestURI, f.path) || underPath(r.URL.Path, f.path) {
				f.h.ServeHTTP(w, r)
				return
			}
		}
		c.prefixed.ServeHTTP(w, r)
	})
}

// underPath reports whether the request target s is p or lies under it.
func underPath(s, p string) bool {
	rest, ok := strings.CutPrefix(s, p)
	return ok && (rest == "" || rest[0] == '/' || rest[0] == '?')
}

// serveAll binds every listener (failing fast if one cannot), applies
// lim to each (timeouts, and at most lim.MaxConnections connections held
// at once per listener), serves until ctx is done or one fails, then shuts
// them all down gracefully.
func serveAll(ctx context.Context, logger *slog.Logger, lim config.Listeners, ls []*listener, bound func()) error {
	for _, l := range ls {
		if l.netLn != nil {
			continue
		}
		nl, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, o := range ls {
				if o.netLn != nil {
					o.netLn.Close()
				}
			}
			return runtimeErr(fmt.Errorf("%s: listen %s: %w", l.name, l.addr, err))
		}
		l.netLn = nl
	}
	for _, l := range ls {
		l.netLn = netutil.LimitListener(l.netLn, lim.MaxConnections)
		if l.http != nil {
			setLimits(l.http, lim)
		}
	}
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			var err error
			if l.grpc != nil {
				err = l.grpc.Serve(l.netLn)
			} else {
				err = l.http.Serve(l.netLn)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
				errc <- fmt.Errorf("%s: %w", l.name, err)
			}
		}()
	}
	if bound != nil {
		bound()
	}
	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down: draining connections")
	case err := <-errc:
		runErr = runtimeErr(err)
		logger.Error("server failed", "err", err)
	}
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer stop()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() {
			if l.grpc != nil {
				done := make(chan struct{})
				go func() { l.grpc.GracefulStop(); close(done) }()
				select {
				case <-done:
				case <-shutdownCtx.Done():
					l.grpc.Stop()
				}
				return
			}
			if err := l.http.Shutdown(shutdownCtx); err != nil {
				logger.Warn("shutdown incomplete", "listener", l.name, "err", err)
			}
		})
	}
	wg.Wait()
	return runErr
}

// cmdAuthz runs the stateless authorization replica: keys from the
// issuer's JWKS, policy from its own config, no store.
func cmdAuthz(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "authz")
	issuer := fs.String("issuer", "", "the broker's issuer URL (overrides issuer in the config)")
	path := fs.String("config", "", "config file (YAML): issuer, listen, authz.*, session.cookie_name and policy are read")
	jwksURL := fs.String("jwks-url", "", "where to fetch the signing keys (default: ISSUER/keys); e.g. the broker's in-cluster Service")
	logFormat := fs.String("log-format", "", "log format: json or text (overrides log.format)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageErr("authz needs --config FILE (and --issuer URL unless the file sets issuer)")
	}
	cfg, err := config.LoadAuthz(*path, e.lookupEnv, *issuer)
	if err != nil {
		return configErr(err)
	}
	logger, err := newLogger(e.stderr, cfg.Log, *logFormat)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *jwksURL == "" {
		*jwksURL = cfg.Issuer + "/keys"
	}
	ks, err := verify.NewRemote(ctx, verify.RemoteOptions{JWKSURL: *jwksURL, Logger: logger})
	if err != nil {
		return usageErr("--jwks-url: %v", err)
	}
	go ks.Run(ctx)
	v, err := verify.New(verify.Options{Issuer: cfg.Issuer, Keys: ks, IDTokenAudiences: cfg.Authz.IDTokenAudiences})
	if err != nil {
		return runtimeErr(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	follower, rev, err := followRevocations(ctx, cfg, ks, reg, logger)
	if err != nil {
		return err
	}
	c, err := newChecks(cfg, v, ks, reg, logger, nil, rev)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ks.LoadedAt().IsZero() {
			w.Header().Set("Retry-After", "5")
			http.Error(w, "not ready: no keys fetched from "+cfg.Issuer+" yet", http.StatusServiceUnavailable)
			return
		}
		if follower != nil && cfg.Authz.Revocations.Mode == "strict" && follower.LastApplied().IsZero() {
			w.Header().Set("Retry-After", "5")
			http.Error(w, "not ready: no revocation feed received from "+cfg.Authz.Revocations.URL+" yet (strict mode)", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if g := mainGatherer(cfg, reg); g != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	ls := append([]*listener{{name: "listen", addr: cfg.Listen, http: newHTTPServer(withChecks(mux, c))}}, c.listeners(cfg)...)
	ls = append(ls, metricsListeners(cfg, reg)...)
	return serveAll(ctx, logger, cfg.Listeners, ls, func() {
		logger.Info("ghbroker authz replica serving", "version", version, "issuer", cfg.Issuer, "jwks_url", *jwksURL, "listen", cfg.Listen,
			"authz_listen", cfg.Authz.Listen, "grpc_listen", cfg.Authz.GRPCListen, "metrics_listen", cfg.Metrics.Listen)
	})
}

// followRevocations starts following the broker's revocation feed when
// authz.revocations.url is set, and returns the set the checks consult;
// without a URL the replica enforces no revocations and says so.
func followRevocations(ctx context.Context, cfg *config.Config, keys revocation.Keys, reg prometheus.Registerer, logger *slog.Logger) (*revocation.Follower, authz.Revocations, error) {
	r := cfg.Authz.Revocations
	enforced := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ghbroker_authz_revocations_enforced",
		Help: "1 when this replica follows the broker's revocation feed (authz.revocations.url), 0 when it enforces no revocations.",
	})
	if err := reg.Register(enforced); err != nil {
		return nil, nil, runtimeErr(err)
	}
	if r.URL == "" {
		logger.Warn("authz.revocations.url is not set: this replica enforces no revocations (sign-outs, webhooks and operators' revokes are not seen here until tokens expire)")
		return nil, nil, nil
	}
	enforced.Set(1)
	f := &revocation.Follower{URL: r.URL, Issuer: cfg.Issuer, Keys: keys, Set: revocation.New(revocation.Options{}),
		Poll: r.Poll.D(), Logger: logger}
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ghbroker_authz_revocations_feed_age_seconds",
		Help: "Seconds since this replica last applied the broker's revocation feed (-1: never).",
	}, func() float64 {
		if t := f.LastApplied(); !t.IsZero() {
			return time.Since(t).Seconds()
		}
		return -1
	})
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ghbroker_revocations_entries", Help: "Live entries in the revocation set.",
	}, func() float64 { return float64(f.Set.Len()) })
	if err := registerCollectors(reg, age, size); err != nil {
		return nil, nil, runtimeErr(err)
	}
	go f.Run(ctx)
	maxStale := time.Duration(0)
	if r.Mode == "strict" {
		maxStale = r.MaxStale.D()
	}
	return f, f.Checked(maxStale), nil
}

func registerCollectors(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
