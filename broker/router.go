package broker

import (
	"net/http"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ghbroker/ghbroker/web"
)

// routes is the one place that knows URL paths and the only file that
// imports gorilla/mux.
func (s *Server) routes() http.Handler {
	r := mux.NewRouter()
	get := []string{http.MethodGet, http.MethodHead}
	if s.opts.Authz != nil {
		// Every method and every Host: gateways forward the original ones.
		r.PathPrefix("/authz").Handler(s.opts.Authz)
	}
	// Other named hosts (the dev emulator and demo services) have their
	// own handlers; every other Host gets the broker.
	for host, h := range s.opts.ExtraHosts {
		r.Host(host).Handler(h)
	}
	root := r

	root.Handle("/.well-known/openid-configuration", s.instrument("discovery", http.HandlerFunc(s.discovery))).Methods(get...)
	root.Handle("/keys", s.instrument("keys", http.HandlerFunc(s.jwks))).Methods(get...)
	root.Handle("/healthz", http.HandlerFunc(s.healthz)).Methods(get...)
	root.Handle("/readyz", http.HandlerFunc(s.readyz)).Methods(get...)
	root.Handle("/metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{})).Methods(get...)
	root.PathPrefix("/static/").Handler(http.StripPrefix("/static/", staticHandler())).Methods(get...)
	if s.signInEnabled() {
		root.Handle("/", s.page("home", s.home)).Methods(get...)
		root.Handle("/login", s.page("login", s.login)).Methods(get...)
		root.Handle("/callback", s.page("callback", s.callback)).Methods(get...)
		root.Handle("/logout", s.page("logout", s.logout)).Methods(http.MethodGet, http.MethodPost)
		root.Handle("/authorize", s.page("authorize", s.authorize)).Methods(http.MethodGet, http.MethodPost)
		root.Handle("/token", s.instrument("token", http.HandlerFunc(s.token))).Methods(http.MethodPost)
		root.Handle("/userinfo", s.instrument("userinfo", http.HandlerFunc(s.userinfo))).Methods(http.MethodGet, http.MethodPost)
		root.Handle("/revoke", s.instrument("revoke", http.HandlerFunc(s.revoke))).Methods(http.MethodPost)
		root.Handle("/introspect", s.instrument("introspect", http.HandlerFunc(s.introspect))).Methods(http.MethodPost)
	}
	root.NotFoundHandler = s.instrument("not_found", http.HandlerFunc(notFound))
	root.MethodNotAllowedHandler = http.HandlerFunc(methodNotAllowed)
	return withRequestID(r)
}

// page wraps a handler for people: metrics and a bounded request.
func (s *Server) page(route string, h http.HandlerFunc) http.Handler {
	return s.instrument(route, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		h(w, r)
	}))
}

func staticHandler() http.Handler {
	fs := http.FileServerFS(web.Static())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fs.ServeHTTP(w, r)
	})
}
