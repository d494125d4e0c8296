package githubfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Webhook delivers organization webhooks the way GitHub does ("Webhook
// events and payloads", "Validating webhook deliveries"): a JSON POST with
// X-GitHub-Event, a GUID in X-GitHub-Delivery, X-Hub-Signature-256 (the
// hex HMAC-SHA256 of the body under the secret) and a GitHub-Hookshot
// User-Agent, given up on after GitHub's 10 seconds.
type Webhook struct {
	// URL receives the deliveries.
	URL string
	// Secret signs them.
	Secret string
	// Client sends them. Default: a client with a 10 s timeout.
	Client *http.Client
}

// Delivery is one delivery as sent, for a test to resend (a replay).
type Delivery struct {
	Event, ID string
	Body      []byte
}

// Send delivers payload as event and returns GitHub's view: the status the
// receiver answered and the delivery.
func (h *Webhook) Send(ctx context.Context, event string, payload any) (int, Delivery, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return 0, Delivery{}, err
	}
	d := Delivery{Event: event, ID: newGUID(), Body: body}
	status, err := h.Resend(ctx, d)
	return status, d, err
}

// Resend delivers d again with the same id, as GitHub's "Redeliver" does.
func (h *Webhook) Resend(ctx context.Context, d Delivery) (int, error) {
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, err
	}
	mac := hmac.New(sha256.New, []byte(h.Secret))
	mac.Write(d.Body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/ghbroker-emulator")
	req.Header.Set("X-GitHub-Event", d.Event)
	req.Header.Set("X-GitHub-Delivery", d.ID)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp.StatusCode, nil
}

func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

type hookAccount struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
	Type  string `json:"type"`
}

// MembershipPayload is the membership event GitHub sends when login is
// added to or removed from team ("added" or "removed", scope "team"),
// with the ids of the emulated world.
func (s *Server) MembershipPayload(action, org, team, login string) (map[string]any, error) {
	w := s.world()
	o, u, err := w.orgAndUser(org, login)
	if err != nil {
		return nil, err
	}
	t, ok := o.teamBySlug[strings.ToLower(team)]
	if !ok {
		return nil, fmt.Errorf("githubfake: org %s has no team %s", org, team)
	}
	return map[string]any{
		"action": action, "scope": "team",
		"member":       hookAccount{Login: u.Login, ID: u.ID, Type: "User"},
		"team":         map[string]any{"slug": t.Slug, "name": t.Name, "id": t.ID},
		"organization": hookAccount{Login: o.Login, ID: o.ID, Type: "Organization"},
		"sender":       hookAccount{Login: "octo-admin", ID: 1, Type: "User"},
	}, nil
}

// MemberRemovedPayload is the organization event GitHub sends when login
// is removed from org.
func (s *Server) MemberRemovedPayload(org, login string) (map[string]any, error) {
	o, u, err := s.world().orgAndUser(org, login)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"action":       "member_removed",
		"membership":   map[string]any{"state": "active", "role": "member", "user": hookAccount{Login: u.Login, ID: u.ID, Type: "User"}},
		"organization": hookAccount{Login: o.Login, ID: o.ID, Type: "Organization"},
		"sender":       hookAccount{Login: "octo-admin", ID: 1, Type: "User"},
	}, nil
}

func (w *world) orgAndUser(org, login string) (*orgRec, *userRec, error) {
	o, ok := w.orgByLogin[strings.ToLower(org)]
	if !ok {
		return nil, nil, fmt.Errorf("githubfake: no org %s", org)
	}
	u, ok := w.userByLogin[strings.ToLower(login)]
	if !ok {
		return nil, nil, fmt.Errorf("githubfake: no user %s", login)
	}
	return o, u, nil
}
