// Package webhook receives GitHub organization webhooks at
// POST /webhooks/github and turns the deliveries that change someone's
// access (a member removed or blocked, a team membership changed, a team
// deleted or renamed, the org renamed) into Events for the revocation
// code to apply. It owns the signature check (X-Hub-Signature-256,
// HMAC-SHA256 over the raw body, compared in constant time), the body cap,
// de-duplication by X-GitHub-Delivery (only after the signature verified)
// and a bounded queue: the answer is 2xx within GitHub's 10 s and the work
// happens behind it; a full queue answers 503 so that GitHub's redelivery
// can be used, and nothing is silently dropped.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ghbroker/ghbroker/broker/internal/page"
)

// MaxBody bounds a delivery. GitHub caps payloads at 25 MB, but the events
// that matter here are a few kilobytes; anything larger is refused (413).
const MaxBody = 1 << 20

// DeliveryTTL is how long a delivery id is remembered: GitHub redelivers
// for up to three days.
const DeliveryTTL = 72 * time.Hour

// Deliveries remembers delivery ids (the store).
type Deliveries interface {
	// FirstDelivery records id until expires and reports whether it had
	// not been seen.
	FirstDelivery(ctx context.Context, id string, expires time.Time) (bool, error)
}

// Applier applies an event to sessions and the revocation set.
type Applier interface {
	Apply(ctx context.Context, e Event) error
}

// Config configures a Handler. Secret, Deliveries and Applier are
// required.
type Config struct {
	// Secret is the webhook secret configured on GitHub.
	Secret []byte
	// AllowedOrgs: deliveries for any other org change nothing.
	AllowedOrgs []string
	// Deliveries de-duplicates deliveries.
	Deliveries Deliveries
	// Applier does the work.
	Applier Applier
	// Queue bounds the deliveries accepted but not yet applied. Default 256.
	Queue int
	// Registry receives the webhook metrics (nil: none).
	Registry prometheus.Registerer
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives delivery events. Default discards.
	Logger *slog.Logger
}

// Handler serves POST /webhooks/github.
type Handler struct {
	secret      []byte
	allowedOrgs []string
	deliveries  Deliveries
	applier     Applier
	slots       chan struct{}
	queue       chan Event
	deliveriesM *prometheus.CounterVec
	now         func() time.Time
	log         *slog.Logger
}

// New checks cfg.
func New(cfg Config) (*Handler, error) {
	if len(cfg.Secret) == 0 || cfg.Deliveries == nil || cfg.Applier == nil {
		return nil, errors.New("webhook: Secret, Deliveries and Applier are required")
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 256
	}
	h := &Handler{
		secret: cfg.Secret, allowedOrgs: cfg.AllowedOrgs, deliveries: cfg.Deliveries, applier: cfg.Applier,
		slots: make(chan struct{}, cfg.Queue), queue: make(chan Event, cfg.Queue), now: cfg.Now, log: cfg.Logger,
		deliveriesM: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ghbroker_webhook_deliveries_total",
			Help: "GitHub webhook deliveries, by event and result.",
		}, []string{"event", "result"}),
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(h.deliveriesM); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Mount adds POST /webhooks/github.
func (h *Handler) Mount(r page.Router) {
	r.API("webhook", "/webhooks/github", h, http.MethodPost)
}

// knownEvents are the metric label values for events; anything else is
// "other", so that a sender cannot choose label values.
var knownEvents = []string{"ping", "organization", "org_block", "membership", "team"}

func eventLabel(e string) string {
	for _, k := range knownEvents {
		if e == k {
			return k
		}
	}
	return "other"
}

// ServeHTTP answers a delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	event := r.Header.Get("X-GitHub-Event")
	label := eventLabel(event)
	answer := func(status int, result, msg string) {
		h.deliveriesM.WithLabelValues(label, result).Inc()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "60")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, msg+"\n")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			answer(http.StatusRequestEntityTooLarge, "too_large", "payload too large")
			return
		}
		answer(http.StatusBadRequest, "unreadable", "the body could not be read")
		return
	}
	if !h.signed(r.Header.Values("X-Hub-Signature-256"), body) {
		h.log.Warn("webhook delivery with a missing or wrong signature", "event", label, "request_id", page.RequestID(r.Context()))
		answer(http.StatusUnauthorized, "bad_signature", "X-Hub-Signature-256 does not verify")
		return
	}
	delivery := r.Header.Get("X-GitHub-Delivery")
	if !validDelivery(delivery) {
		answer(http.StatusBadRequest, "bad_delivery", "X-GitHub-Delivery is missing or malformed")
		return
	}
	if event == "ping" {
		answer(http.StatusOK, "ping", "pong")
		return
	}
	e, err := parse(event, body)
	if err != nil {
		h.log.Warn("webhook payload does not parse", "event", label, "delivery", delivery)
		answer(http.StatusBadRequest, "bad_payload", "the payload is not a "+label+" event")
		return
	}
	if e.Kind == Ignored {
		answer(http.StatusAccepted, "ignored", "nothing to do")
		return
	}
	if !h.allowed(e.Org) && !h.allowed(e.OldOrg) {
		h.log.Info("webhook for an org that is not allowed: ignored", "event", label, "delivery", delivery)
		answer(http.StatusAccepted, "other_org", "not an allowed organization")
		return
	}
	// Reserve a place before remembering the delivery: a delivery refused
	// for a full queue must count as new when GitHub redelivers it.
	select {
	case h.slots <- struct{}{}:
	default:
		h.log.Warn("webhook queue full: refusing the delivery so that GitHub redelivers it", "delivery", delivery)
		answer(http.StatusServiceUnavailable, "queue_full", "busy; redeliver later")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	first, err := h.deliveries.FirstDelivery(ctx, delivery, h.now().Add(DeliveryTTL))
	cancel()
	if err != nil || !first {
		<-h.slots
		if err != nil {
			h.log.Warn("recording a webhook delivery failed", "delivery", delivery, "err", err)
			answer(http.StatusServiceUnavailable, "store_error", "busy; redeliver later")
			return
		}
		answer(http.StatusOK, "duplicate", "already received")
		return
	}
	e.Delivery, e.At = delivery, h.now()
	h.queue <- e // never blocks: a slot is reserved
	answer(http.StatusAccepted, "accepted", "accepted")
}

// Run applies queued events until ctx ends.
func (h *Handler) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-h.queue:
			actx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := h.applier.Apply(actx, e); err != nil {
				h.log.Error("applying a webhook event failed", "kind", e.Kind.String(), "delivery", e.Delivery, "err", err)
			} else {
				h.log.Info("webhook event applied", "kind", e.Kind.String(), "org", e.Org, "team", e.Team, "login", e.Login, "delivery", e.Delivery)
			}
			cancel()
			<-h.slots
		}
	}
}

// signed checks X-Hub-Signature-256: exactly one "sha256=<hex>" that is
// the HMAC-SHA256 of body under the secret, compared in constant time.
func (h *Handler) signed(headers []string, body []byte) bool {
	if len(headers) != 1 {
		return false
	}
	hexSig, ok := strings.CutPrefix(headers[0], "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, h.secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

func (h *Handler) allowed(org string) bool {
	for _, a := range h.allowedOrgs {
		if org != "" && strings.EqualFold(a, org) {
			return true
		}
	}
	return false
}

// validDelivery accepts GitHub's delivery ids (a GUID) and nothing that
// could not be one.
func validDelivery(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '-') {
			return false
		}
	}
	return true
}
