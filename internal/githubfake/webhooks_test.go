package githubfake_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/ghbroker/ghbroker/internal/githubfake"
)

// TestWebhookDeliveries: deliveries carry what GitHub's do — the event, a
// GUID delivery id, a signature over the exact body — and a redelivery
// keeps its id.
func TestWebhookDeliveries(t *testing.T) {
	type got struct {
		event, id, sig string
		body           []byte
	}
	seen := make(chan got, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen <- got{r.Header.Get("X-GitHub-Event"), r.Header.Get("X-GitHub-Delivery"), r.Header.Get("X-Hub-Signature-256"), b}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	gh := githubfake.New(githubfake.DefaultFixture(), githubfake.Options{})
	hook := &githubfake.Webhook{URL: srv.URL, Secret: "It's a Secret to Everybody"}
	p, err := gh.MembershipPayload("removed", "acme", "sre", "alice")
	if err != nil {
		t.Fatal(err)
	}
	status, d, err := hook.Send(context.Background(), "membership", p)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("send: %d %v", status, err)
	}
	g := <-seen
	mac := hmac.New(sha256.New, []byte(hook.Secret))
	mac.Write(g.body)
	if g.event != "membership" || g.sig != "sha256="+hex.EncodeToString(mac.Sum(nil)) ||
		!regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(g.id) || g.id != d.ID {
		t.Errorf("delivery %+v", g)
	}
	var body struct {
		Action, Scope string
		Member        struct {
			Login string
			ID    int64
		}
		Team         struct{ Slug string }
		Organization struct{ Login string }
	}
	if err := json.Unmarshal(g.body, &body); err != nil || body.Action != "removed" || body.Scope != "team" ||
		body.Member.Login != "alice" || body.Member.ID == 0 || body.Team.Slug != "sre" || body.Organization.Login != "acme" {
		t.Errorf("payload %s", g.body)
	}
	if _, err := hook.Resend(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if again := <-seen; again.id != g.id || string(again.body) != string(g.body) {
		t.Error("a redelivery changed its id or body")
	}
	if _, err := gh.MemberRemovedPayload("acme", "nobody"); err == nil {
		t.Error("a payload for an unknown user")
	}
}
