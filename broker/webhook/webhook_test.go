package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGitHubSignatureVector is GitHub's published example ("Validating
// webhook deliveries"): secret "It's a Secret to Everybody", body
// "Hello, World!".
func TestGitHubSignatureVector(t *testing.T) {
	h := &Handler{secret: []byte("It's a Secret to Everybody")}
	const sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if !h.signed([]string{sig}, []byte("Hello, World!")) {
		t.Fatal("GitHub's own example does not verify")
	}
	for name, hdr := range map[string][]string{
		"none":          nil,
		"two":           {sig, sig},
		"sha1":          {"sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"},
		"upper-case id": {strings.Replace(sig, "sha256=", "SHA256=", 1)},
		"truncated":     {sig[:len(sig)-2]},
		"flipped":       {sig[:len(sig)-1] + "f"},
		"not hex":       {"sha256=" + strings.Repeat("zz", 32)},
	} {
		if h.signed(hdr, []byte("Hello, World!")) {
			t.Errorf("%s: verified", name)
		}
	}
	if h.signed([]string{sig}, []byte("Hello, World?")) {
		t.Error("another body verified")
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		event, body string
		want        Event
	}{
		{"organization", `{"action":"member_removed","membership":{"user":{"login":"bob","id":1002}},"organization":{"login":"acme"}}`,
			Event{Kind: LeftOrg, Org: "acme", UserID: 1002, Login: "bob"}},
		{"org_block", `{"action":"blocked","blocked_user":{"login":"eve","id":66},"organization":{"login":"acme"}}`,
			Event{Kind: LeftOrg, Org: "acme", UserID: 66, Login: "eve"}},
		{"membership", `{"action":"removed","scope":"team","member":{"login":"bob","id":1002},"team":{"slug":"sre"},"organization":{"login":"acme"}}`,
			Event{Kind: MembershipChanged, Org: "acme", Team: "sre", UserID: 1002, Login: "bob"}},
		{"membership", `{"action":"added","scope":"team","member":{"login":"bob","id":1002},"team":{"slug":"sre"},"organization":{"login":"acme"}}`,
			Event{Kind: MembershipChanged, Org: "acme", Team: "sre", UserID: 1002, Login: "bob"}},
		{"team", `{"action":"deleted","team":{"slug":"sre"},"organization":{"login":"acme"}}`,
			Event{Kind: TeamGone, Org: "acme", Team: "sre"}},
		{"team", `{"action":"edited","changes":{"name":{"from":"Site Reliability!"}},"team":{"slug":"sre"},"organization":{"login":"acme"}}`,
			Event{Kind: TeamRenamed, Org: "acme", Team: "sre", OldTeam: "site-reliability"}},
		{"team", `{"action":"edited","changes":{"name":{"from":"SRE"}},"team":{"slug":"sre"},"organization":{"login":"acme"}}`,
			Event{Kind: Ignored, Org: "acme", Team: "sre", OldTeam: "sre"}},
		{"team", `{"action":"edited","changes":{"privacy":{"from":"closed"}},"team":{"slug":"sre"},"organization":{"login":"acme"}}`,
			Event{Kind: Ignored, Org: "acme"}},
		{"organization", `{"action":"renamed","changes":{"login":{"from":"acme-old"}},"organization":{"login":"acme"}}`,
			Event{Kind: OrgRenamed, Org: "acme", OldOrg: "acme-old"}},
		{"organization", `{"action":"member_added","membership":{"user":{"login":"bob","id":1002}},"organization":{"login":"acme"}}`,
			Event{Kind: Ignored, Org: "acme"}},
		{"membership", `{"action":"removed","scope":"organization","member":{"login":"bob","id":1002},"organization":{"login":"acme"}}`,
			Event{Kind: Ignored, Org: "acme"}},
		{"push", `{"ref":"refs/heads/main"}`, Event{Kind: Ignored}},
	} {
		got, err := parse(tc.event, []byte(tc.body))
		if err != nil || got != tc.want {
			t.Errorf("%s %s:\n got %+v, %v\nwant %+v", tc.event, tc.body, got, err, tc.want)
		}
	}
	for _, bad := range []struct{ event, body string }{
		{"organization", `{"action":"member_removed","organization":{"login":"acme"}}`},
		{"organization", `{"action":"member_removed","membership":{"user":{"login":"bob","id":-1}},"organization":{"login":"acme"}}`},
		{"org_block", `{"action":"blocked","blocked_user":{"login":"eve","id":66}}`},
		{"team", `{"action":"deleted","organization":{"login":"acme"}}`},
		{"membership", `not json`},
	} {
		if _, err := parse(bad.event, []byte(bad.body)); err == nil {
			t.Errorf("%s %s: parsed", bad.event, bad.body)
		}
	}
}

// memDeliveries is an in-memory Deliveries for the handler's tests.
type memDeliveries struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *memDeliveries) FirstDelivery(_ context.Context, id string, _ time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[id] {
		return false, nil
	}
	m.seen[id] = true
	return true, nil
}

// recorder is an Applier that records what it was asked to apply and can
// be held, to fill the queue.
type recorder struct {
	mu     sync.Mutex
	events []Event
	hold   chan struct{}
}

func (r *recorder) Apply(_ context.Context, e Event) error {
	if r.hold != nil {
		<-r.hold
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) applied() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

const secret = "s3cret-for-tests"

func deliver(t *testing.T, h *Handler, event, delivery, body string, sign bool) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/github", strings.NewReader(body))
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	if sign {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(body))
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func newHandler(t *testing.T, a *recorder, queue int) *Handler {
	t.Helper()
	h, err := New(Config{Secret: []byte(secret), AllowedOrgs: []string{"acme"}, Deliveries: &memDeliveries{seen: map[string]bool{}},
		Applier: a, Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const removed = `{"action":"member_removed","membership":{"user":{"login":"bob","id":1002}},"organization":{"login":"acme"}}`

// TestDeliveries: only signed deliveries count; replays are answered but
// applied once; other orgs, oversized bodies and a full queue change
// nothing, and a delivery refused for a full queue is accepted when GitHub
// redelivers it.
func TestDeliveries(t *testing.T) {
	a := &recorder{}
	h := newHandler(t, a, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if rec := deliver(t, h, "organization", "d-1", removed, false); rec.Code != http.StatusUnauthorized {
		t.Errorf("unsigned: %d", rec.Code)
	}
	if rec := deliver(t, h, "ping", "d-0", `{"zen":"Keep it logically awesome."}`, true); rec.Code != http.StatusOK {
		t.Errorf("ping: %d", rec.Code)
	}
	if rec := deliver(t, h, "organization", "d-1", removed, true); rec.Code != http.StatusAccepted {
		t.Fatalf("first delivery: %d %s", rec.Code, rec.Body)
	}
	// The queue holds one: the next delivery is refused, not dropped.
	if rec := deliver(t, h, "organization", "d-2", removed, true); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("full queue: %d", rec.Code)
	}
	go h.Run(ctx)
	waitFor(t, func() bool { return len(a.applied()) == 1 })
	if rec := deliver(t, h, "organization", "d-1", removed, true); rec.Code != http.StatusOK {
		t.Errorf("replay: %d", rec.Code)
	}
	if rec := deliver(t, h, "organization", "d-2", removed, true); rec.Code != http.StatusAccepted {
		t.Errorf("redelivery after a full queue: %d", rec.Code)
	}
	waitFor(t, func() bool { return len(a.applied()) == 2 })
	other := strings.Replace(removed, `"login":"acme"`, `"login":"globex"`, 1)
	if rec := deliver(t, h, "organization", "d-3", other, true); rec.Code != http.StatusAccepted {
		t.Errorf("another org: %d", rec.Code)
	}
	big := `{"action":"member_removed","pad":"` + strings.Repeat("x", MaxBody) + `"}`
	if rec := deliver(t, h, "organization", "d-4", big, true); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized: %d", rec.Code)
	}
	if rec := deliver(t, h, "organization", "not a guid", removed, true); rec.Code != http.StatusBadRequest {
		t.Errorf("bad delivery id: %d", rec.Code)
	}
	time.Sleep(50 * time.Millisecond) // let a wrongly queued event show up
	got := a.applied()
	if len(got) != 2 || got[0].Delivery != "d-1" || got[1].Delivery != "d-2" || got[0].Kind != LeftOrg || got[0].UserID != 1002 || got[0].At.IsZero() {
		t.Errorf("applied %+v", got)
	}
}

// TestSignatureBeforeDeduplication: a forged delivery cannot burn a
// delivery id that GitHub will later send for real.
func TestSignatureBeforeDeduplication(t *testing.T) {
	a := &recorder{}
	h := newHandler(t, a, 4)
	deliver(t, h, "organization", "d-9", removed, false)
	if rec := deliver(t, h, "organization", "d-9", removed, true); rec.Code != http.StatusAccepted {
		t.Errorf("the real delivery after a forged one with its id: %d", rec.Code)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for range 200 {
		if ok() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("timed out")
}

// FuzzParse: no payload makes parse panic, and every event it accepts
// names an org.
func FuzzParse(f *testing.F) {
	for _, s := range []string{removed, `{"action":"blocked","blocked_user":{"login":"e","id":1},"organization":{"login":"a"}}`, `{}`, `[]`, `null`} {
		f.Add("organization", s)
		f.Add("team", s)
	}
	f.Fuzz(func(t *testing.T, event, body string) {
		e, err := parse(event, []byte(body))
		if err == nil && e.Kind != Ignored && e.Org == "" {
			t.Fatalf("%s %q: %+v without an org", event, body, e)
		}
	})
}
