// Package broker is ghbroker's identity provider: the HTTP surface that
// people and relying parties talk to. It serves OIDC discovery and the JWKS,
// signs people in with GitHub, keeps their sessions and (in later files)
// answers the OIDC authorization, token and userinfo endpoints.
//
// It assembles per-concern handlers on one router (router.go is the only
// file that imports gorilla/mux). It does not decide authorization for
// gateways: package authz does, and the command mounts its handler here.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ghbroker/ghbroker/store"
)

// KeySource is what the broker needs from the signing keys.
type KeySource interface {
	// JWKS is the published key set as JSON.
	JWKS() []byte
	// PublishedAlgorithms lists the algorithms of the published keys.
	PublishedAlgorithms() []string
	// LoadedAt is when the key set was last loaded (zero: never).
	LoadedAt() time.Time
}

// Options configure a Server. Issuer, Keys and Store are required.
type Options struct {
	// Issuer is the public base URL, without a trailing slash.
	Issuer string
	// Keys signs and publishes keys.
	Keys KeySource
	// Store persists sessions and codes; Ping-ed by /readyz.
	Store store.KeyStore
	// JWKSMaxAge is the Cache-Control max-age of /keys. It must be shorter
	// than the time a next key is published before it signs.
	JWKSMaxAge time.Duration
	// Authz, when set, is mounted at /authz and /authz/{rest}.
	Authz http.Handler
	// Registry receives the broker's metrics; /metrics serves Gatherer.
	Registry prometheus.Registerer
	// Gatherer is served at /metrics. Default prometheus.DefaultGatherer
	// is never used: pass the registry.
	Gatherer prometheus.Gatherer
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives request logs. Default discards.
	Logger *slog.Logger
}

// Server is the broker's HTTP surface.
type Server struct {
	opts    Options
	handler http.Handler
	metrics *httpMetrics
}

// New validates opts and assembles the routes.
func New(opts Options) (*Server, error) {
	if opts.Issuer == "" || opts.Keys == nil || opts.Store == nil {
		return nil, errors.New("broker: Issuer, Keys and Store are required")
	}
	if _, err := url.Parse(opts.Issuer); err != nil {
		return nil, fmt.Errorf("broker: issuer: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		r := prometheus.NewRegistry()
		opts.Registry, opts.Gatherer = r, r
	}
	if opts.JWKSMaxAge <= 0 {
		opts.JWKSMaxAge = 5 * time.Minute
	}
	s := &Server{opts: opts}
	m, err := newHTTPMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP serves every broker route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// ready reports why the server cannot serve, or nil: the store answers
// and signing keys are loaded.
func (s *Server) ready(ctx context.Context) error {
	if s.opts.Keys.LoadedAt().IsZero() {
		return errors.New("signing keys not loaded")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.opts.Store.GetKeys(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
