package broker

import (
	"net/http"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes is the one place that knows URL paths and the only file that
// imports gorilla/mux.
func (s *Server) routes() http.Handler {
	r := mux.NewRouter()
	r.StrictSlash(false)
	get := []string{http.MethodGet, http.MethodHead}

	r.Handle("/.well-known/openid-configuration", s.instrument("discovery", http.HandlerFunc(s.discovery))).Methods(get...)
	r.Handle("/keys", s.instrument("keys", http.HandlerFunc(s.jwks))).Methods(get...)
	r.Handle("/healthz", http.HandlerFunc(s.healthz)).Methods(get...)
	r.Handle("/readyz", http.HandlerFunc(s.readyz)).Methods(get...)
	r.Handle("/metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{})).Methods(get...)
	if s.opts.Authz != nil {
		// Every method: gateways forward the original one.
		r.PathPrefix("/authz").Handler(s.opts.Authz)
	}
	r.NotFoundHandler = s.instrument("not_found", http.HandlerFunc(notFound))
	r.MethodNotAllowedHandler = http.HandlerFunc(methodNotAllowed)
	return r
}
