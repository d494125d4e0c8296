// Package broker assembles ghbroker's HTTP surface: one router (router.go
// is the only file that imports gorilla/mux), the request-id and metrics
// middleware, health and readiness, static assets, and the domain handlers
// mounted on it — sign-in (broker/signin), the OIDC provider (broker/oidc),
// the device flow (broker/device, which /token reaches through
// oidc.Config.DeviceGrant) and, in later rounds, webhooks. Sessions live in
// broker/session; the gateway check (package authz) is mounted at /authz.
package broker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ghbroker/ghbroker/broker/internal/page"
)

// Handler is a domain handler that mounts its routes on the broker's
// router (*signin.Handler, *oidc.Provider, *device.Handler).
type Handler interface {
	Mount(r page.Router)
}

// Keys is what readiness asks of the signing keys.
type Keys interface {
	// LoadedAt is when the key set was last loaded (zero: never).
	LoadedAt() time.Time
}

// Config configures a Server. Keys is required.
type Config struct {
	// Keys are the signing keys; the broker is ready once they are loaded.
	Keys Keys
	// Handlers mount the broker's routes.
	Handlers []Handler
	// Authz, when set, is mounted at /authz and /authz/{rest}.
	Authz http.Handler
	// ExtraHosts maps "host:port" names to their own handlers (the dev
	// GitHub emulator and demo services); every other Host is the broker's.
	ExtraHosts map[string]http.Handler
	// Registry receives the broker's metrics. Default: a new registry.
	Registry prometheus.Registerer
	// Gatherer is served at /metrics.
	Gatherer prometheus.Gatherer
	// HSTSMaxAge, when positive, is sent as Strict-Transport-Security on
	// every response (only meaningful, and only to be set, for an https
	// issuer).
	HSTSMaxAge time.Duration
	// Logger receives request logs. Default discards.
	Logger *slog.Logger
}

// Server is the broker's HTTP surface.
type Server struct {
	keys    Keys
	log     *slog.Logger
	metrics *httpMetrics
	handler http.Handler
}

// New builds the router and mounts every handler.
func New(cfg Config) (*Server, error) {
	if cfg.Keys == nil {
		return nil, errors.New("broker: Keys is required")
	}
	s := &Server{keys: cfg.Keys, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	reg, gat := cfg.Registry, cfg.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, gat = r, r
	}
	m, err := newHTTPMetrics(reg)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.handler = s.routes(cfg, gat)
	return s, nil
}

// ServeHTTP serves every broker route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// ready reports why the server cannot serve, or nil. Ready means "can
// answer checks": signing keys are loaded (the checks verify with them).
// The store is deliberately not asked: while it is unavailable sign-ins and
// token requests answer 503, but every check keeps answering, and failing
// readiness would pull every replica out of its Service and turn a store
// outage into an outage of every tool behind the gateway (docs/ha.md).
func (s *Server) ready(context.Context) error {
	if s.keys.LoadedAt().IsZero() {
		return errors.New("signing keys not loaded")
	}
	return nil
}
