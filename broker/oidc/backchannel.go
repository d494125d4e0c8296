package oidc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ghbroker/ghbroker/broker/internal/secret"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/store"
)

// backchannelEvent is the event of an OpenID Back-Channel Logout 1.0
// logout token (§2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutClaims are a logout token's claims (Back-Channel Logout §2.4): no
// nonce, an events claim, and both sid and sub.
type logoutClaims struct {
	jwt.Claims
	Events    map[string]struct{} `json:"events"`
	SessionID string              `json:"sid"`
}

// BackchannelConfig configures a Backchannel.
type BackchannelConfig struct {
	// Issuer is the broker.
	Issuer string
	// Signer signs logout tokens.
	Signer interface {
		Sign(kind claims.Kind, c any) (string, error)
	}
	// Clients are the relying parties; those with a BackchannelLogoutURI
	// are told.
	Clients []Client
	// HTTP sends the logout tokens. Default: a client with a 5 s timeout.
	HTTP *http.Client
	// Attempts bounds the tries per delivery. Default 4 (waiting 1, 2 and
	// 4 s between them).
	Attempts int
	// Queue bounds the deliveries waiting. Default 1024.
	Queue int
	// Registry receives the delivery metrics (nil: none).
	Registry prometheus.Registerer
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives delivery failures. Default discards.
	Logger *slog.Logger
}

// Backchannel tells relying parties that a session ended (OpenID
// Back-Channel Logout 1.0), behind the request that ended it: a relying
// party that hangs or fails costs a bounded number of tries and never
// delays anyone's sign-out.
type Backchannel struct {
	issuer string
	signer interface {
		Sign(claims.Kind, any) (string, error)
	}
	uris     map[string]string
	http     *http.Client
	attempts int
	queue    chan delivery
	results  *prometheus.CounterVec
	now      func() time.Time
	log      *slog.Logger
}

type delivery struct {
	client, uri string
	sess        store.Session
}

// NewBackchannel checks cfg.
func NewBackchannel(cfg BackchannelConfig) (*Backchannel, error) {
	if cfg.Issuer == "" || cfg.Signer == nil {
		return nil, errors.New("oidc: back-channel logout needs Issuer and Signer")
	}
	b := &Backchannel{
		issuer: cfg.Issuer, signer: cfg.Signer, uris: map[string]string{}, http: cfg.HTTP, attempts: cfg.Attempts,
		now: cfg.Now, log: cfg.Logger,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ghbroker_backchannel_logout_deliveries_total",
			Help: "OpenID Back-Channel Logout deliveries to relying parties, by result.",
		}, []string{"result"}),
	}
	for _, c := range cfg.Clients {
		if c.BackchannelLogoutURI != "" {
			b.uris[c.ID] = c.BackchannelLogoutURI
		}
	}
	if b.http == nil {
		b.http = &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a logout token is never sent on to where a redirect points
		}}
	}
	if b.attempts <= 0 {
		b.attempts = 4
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	b.queue = make(chan delivery, cfg.Queue)
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(b.results); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// SessionEnded queues a logout token for every relying party of sess that
// asked for back-channel logout.
func (b *Backchannel) SessionEnded(sess store.Session) {
	for _, id := range sess.RelyingParties {
		uri, ok := b.uris[id]
		if !ok {
			continue
		}
		select {
		case b.queue <- delivery{client: id, uri: uri, sess: sess}:
		default:
			b.results.WithLabelValues("dropped").Inc()
			b.log.Warn("back-channel logout queue full: a relying party is not told", "client", id, "session", sess.ID)
		}
	}
}

// Run delivers queued logout tokens until ctx ends.
func (b *Backchannel) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-b.queue:
			b.deliver(ctx, d)
		}
	}
}

func (b *Backchannel) deliver(ctx context.Context, d delivery) {
	wait := time.Second
	var err error
	for attempt := 1; attempt <= b.attempts; attempt++ {
		if err = b.send(ctx, d); err == nil {
			b.results.WithLabelValues("delivered").Inc()
			return
		}
		if attempt == b.attempts {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
	b.results.WithLabelValues("failed").Inc()
	b.log.Warn("back-channel logout failed", "client", d.client, "session", d.sess.ID, "attempts", b.attempts, "err", err)
}

// send POSTs a fresh logout token (§2.5: application/x-www-form-urlencoded,
// logout_token); the relying party answers 200 (or 204) when it logged the
// session out.
func (b *Backchannel) send(ctx context.Context, d delivery) error {
	now := b.now()
	tok, err := b.signer.Sign(claims.KindLogout, logoutClaims{
		Claims: jwt.Claims{
			Issuer: b.issuer, Subject: d.sess.Subject, Audience: jwt.Audience{d.client},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)), ID: secret.Random(16),
		},
		Events:    map[string]struct{}{backchannelEvent: {}},
		SessionID: d.sess.ID,
	})
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, d.uri, strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("the relying party answered %s", resp.Status)
	}
	return nil
}
