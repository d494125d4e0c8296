package broker

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ghbroker/ghbroker/broker/internal/page"
	"github.com/ghbroker/ghbroker/web"
)

// maxPageBody bounds the body of every page request.
const maxPageBody = 64 << 10

// routes is the one place that imports gorilla/mux.
func (s *Server) routes(cfg Config, gat prometheus.Gatherer) http.Handler {
	r := mux.NewRouter()
	get := []string{http.MethodGet, http.MethodHead}
	if cfg.Authz != nil {
		// Every method and every Host: gateways forward the original ones.
		r.PathPrefix("/authz").Handler(cfg.Authz)
	}
	// Other named hosts (the dev emulator and demo services) have their
	// own handlers; every other Host gets the broker.
	for host, h := range cfg.ExtraHosts {
		r.Host(host).Handler(h)
	}
	rt := &router{s: s, r: r}
	r.HandleFunc("/healthz", s.healthz).Methods(get...)
	r.HandleFunc("/readyz", s.readyz).Methods(get...)
	if gat != nil {
		r.Handle("/metrics", promhttp.HandlerFor(gat, promhttp.HandlerOpts{})).Methods(get...)
	}
	r.PathPrefix("/static/").Handler(http.StripPrefix("/static/", staticHandler())).Methods(get...)
	for _, h := range cfg.Handlers {
		h.Mount(rt)
	}
	r.NotFoundHandler = s.instrument("not_found", http.HandlerFunc(notFound))
	r.MethodNotAllowedHandler = http.HandlerFunc(methodNotAllowed)
	h := page.WithRequestID(r)
	if cfg.HSTSMaxAge > 0 {
		h = withHSTS(h, cfg.HSTSMaxAge)
	}
	return h
}

// withHSTS tells browsers to use https only for the broker's host.
func withHSTS(next http.Handler, maxAge time.Duration) http.Handler {
	v := "max-age=" + strconv.Itoa(int(maxAge.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", v)
		next.ServeHTTP(w, r)
	})
}

// router is the page.Router that domain handlers mount on.
type router struct {
	s *Server
	r *mux.Router
}

// Page mounts a handler for people: metrics and a bounded request body.
func (rt *router) Page(route, path string, h http.HandlerFunc, methods ...string) {
	rt.r.Handle(path, rt.s.instrument(route, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxPageBody)
		h(w, r)
	}))).Methods(methods...)
}

// API mounts a machine endpoint with metrics.
func (rt *router) API(route, path string, h http.Handler, methods ...string) {
	rt.r.Handle(path, rt.s.instrument(route, h)).Methods(methods...)
}

func staticHandler() http.Handler {
	fs := http.FileServerFS(web.Static())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fs.ServeHTTP(w, r)
	})
}
