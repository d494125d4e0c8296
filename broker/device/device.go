// Package device is the device authorization grant (RFC 8628) on the
// broker: POST /device/code, where a command-line client asks for a device
// code and a user code; the /device page, where a signed-in person enters
// or confirms the user code and approves or denies it; and Redeem, which
// the token endpoint (broker/oidc, through its DeviceGrant seam) calls for
// every poll.
//
// It owns the device records' life cycle (pending → approved or denied →
// redeemed), the polling rules (interval, slow_down), the user-code
// alphabet and the rate limit on wrong user codes. It does not mint
// tokens, run the GitHub round trip (the page sends people to /login) nor
// know anything of broker/oidc or broker/signin.
package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/ghbroker/ghbroker/broker/internal/oauth"
	"github.com/ghbroker/ghbroker/broker/internal/page"
	"github.com/ghbroker/ghbroker/broker/session"
	"github.com/ghbroker/ghbroker/store"
)

// Lifetimes and intervals (RFC 8628 §3.2, §3.5).
const (
	// CodeTTL is how long a device code and its user code can be used.
	CodeTTL = 10 * time.Minute
	// Interval is the polling interval a client starts with, in seconds.
	Interval = 5
	// SlowDownStep is what every slow_down adds to a code's interval.
	SlowDownStep = 5
	// retention keeps a record past its deadline, so that the page and
	// polls say "expired" rather than "unknown".
	retention = 10 * time.Minute
)

// Store is the persistence the device flow uses. Its counters keep the
// deployment's budget of wrong user codes (Limits): on a store that
// replicas share, one budget for all of them.
type Store interface {
	store.DeviceCodeStore
	store.SecretStore
	store.CounterStore
}

// Client is a static client (the same registry entries as broker/oidc's).
type Client = oauth.Client

// Config configures a Handler. Issuer, Sessions, Store and Clients are
// required.
type Config struct {
	// Issuer is the broker's public URL, without a trailing slash.
	Issuer string
	// Sessions reads the approving person's sign-in session.
	Sessions *session.Manager
	// Store keeps device records, the key of the approval form's CSRF
	// tokens and the deployment's count of wrong user codes.
	Store Store
	// Clients are the static clients; only those that list the
	// device_code grant may use it.
	Clients []Client
	// Limits bounds wrong user-code entries. A zero field (a zero pair:
	// burst and refill, limit and window) takes DefaultLimits' value.
	Limits Limits
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives device-flow events. Default discards.
	Logger *slog.Logger
}

// Handler serves the device authorization endpoint and the approval page,
// and redeems device codes for the token endpoint.
type Handler struct {
	issuer   string
	sessions *session.Manager
	store    Store
	clients  *oauth.Clients
	guesses  *limiter
	issued   *issuance
	budget   *budget
	pages    *page.Renderer
	now      func() time.Time
	log      *slog.Logger
}

// New checks cfg, loads (or creates) the CSRF key and builds the handler.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	if cfg.Issuer == "" || cfg.Sessions == nil || cfg.Store == nil {
		return nil, errors.New("device: Issuer, Sessions and Store are required")
	}
	if u, err := url.Parse(cfg.Issuer); err != nil || u.Host == "" {
		return nil, fmt.Errorf("device: issuer %q is not an absolute URL", cfg.Issuer)
	}
	clients, err := oauth.NewClients(cfg.Clients, cfg.Now, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("device: %w", err)
	}
	h := &Handler{
		issuer: cfg.Issuer, sessions: cfg.Sessions, store: cfg.Store, clients: clients,
		now: cfg.Now, log: cfg.Logger,
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	lim := cfg.Limits.withDefaults()
	h.guesses = newLimiter(lim, h.now)
	h.issued = &issuance{burst: lim.CodeBurst, refill: lim.CodeRefill, now: h.now}
	h.budget = &budget{counters: cfg.Store, limit: lim.DeploymentLimit, window: lim.DeploymentWindow, now: h.now}
	if h.pages, err = page.NewRenderer(h.log); err != nil {
		return nil, err
	}
	return h, nil
}

// Mount adds the device routes.
func (h *Handler) Mount(r page.Router) {
	r.API("device_code", "/device/code", http.HandlerFunc(h.authorize), http.MethodPost)
	r.Page("device", "/device", h.page, http.MethodGet, http.MethodHead, http.MethodPost)
}
