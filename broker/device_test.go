package broker_test

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/broker/device"
	"github.com/ghbroker/ghbroker/broker/internal/secret"
	brokeroidc "github.com/ghbroker/ghbroker/broker/oidc"
	"github.com/ghbroker/ghbroker/claims"
)

// deviceWorld is a world with a public device client "cli" (device_code and
// refresh_token only, no redirect URIs), a confidential device client
// "kube", and "grafana", which has not opted in to the device grant.
func deviceWorld(t testing.TB, lim device.Limits) *world {
	t.Helper()
	return newWorld(t, worldOptions{deviceLimits: lim, clients: func(w *world) []brokeroidc.Client {
		return []brokeroidc.Client{
			{ID: "cli", Public: true, Name: "ghbroker CLI", GrantTypes: []string{"device_code", "refresh_token"}},
			{ID: "kube", Secret: "kube-secret-0123456789abcdef0123456", Name: "Kubernetes", GrantTypes: []string{"device_code"}},
			{ID: "grafana", Secret: rpSecret, RedirectURIs: []string{rpCallback(w)}},
		}
	}})
}

// startDevice asks /device/code for a code as the public client "cli".
func (w *world) startDevice(scope string) (deviceCode, userCode string) {
	w.t.Helper()
	st, out, h := w.post("/device/code", url.Values{"client_id": {"cli"}, "scope": {scope}}, "", "")
	if st != http.StatusOK {
		w.t.Fatalf("/device/code = %d %v", st, out)
	}
	if h.Get("Cache-Control") != "no-store" {
		w.t.Errorf("/device/code Cache-Control = %q", h.Get("Cache-Control"))
	}
	deviceCode, _ = out["device_code"].(string)
	userCode, _ = out["user_code"].(string)
	if !regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`).MatchString(userCode) {
		w.t.Errorf("user_code = %q", userCode)
	}
	if len(deviceCode) != 43 {
		w.t.Errorf("device_code %q is not 256 bits of base64url", deviceCode)
	}
	if out["verification_uri"] != w.issuer+"/device" ||
		out["verification_uri_complete"] != w.issuer+"/device?user_code="+userCode ||
		out["expires_in"] != 600.0 || out["interval"] != 5.0 {
		w.t.Errorf("/device/code answered %v", out)
	}
	return deviceCode, userCode
}

// poll is one device-flow poll at /token as client id.
func (w *world) poll(id, sec, deviceCode string) (int, map[string]any) {
	w.t.Helper()
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}}
	basic := id
	if sec == "" {
		form.Set("client_id", id)
		basic = ""
	}
	st, out, _ := w.post("/token", form, basic, sec)
	return st, out
}

// wantPoll checks a poll's OAuth error.
func (w *world) wantPoll(deviceCode, code string) {
	w.t.Helper()
	st, out := w.poll("cli", "", deviceCode)
	if st != http.StatusBadRequest || out["error"] != code {
		w.t.Fatalf("poll = %d %v, want 400 %s", st, out, code)
	}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// devicePage signs the browser in on the way to /device?user_code=code and
// returns the page.
func (b *browser) devicePage(code string) (*http.Response, string) {
	b.w.t.Helper()
	u := b.w.issuer + "/device?user_code=" + url.QueryEscape(code)
	resp, body, last := b.follow(u, nil)
	if last != u {
		b.signIn("/device?user_code=" + url.QueryEscape(code))
		resp, body = b.get(u)
	}
	return resp, body
}

// postForm posts a form from the browser, with its cookies.
func (b *browser) postForm(path string, form url.Values) (*http.Response, string) {
	b.w.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.w.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.client.Do(req)
	if err != nil {
		b.w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// decide opens the code's page and presses Approve or Deny.
func (b *browser) decide(code, action string) (*http.Response, string) {
	b.w.t.Helper()
	resp, body := b.devicePage(code)
	m := csrfRe.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.w.t.Fatalf("device page = %d without a form:\n%s", resp.StatusCode, body)
	}
	return b.postForm("/device", url.Values{"csrf": {html.UnescapeString(m[1])}, "user_code": {code}, "action": {action}})
}

func TestDeviceFlow(t *testing.T) {
	w := deviceWorld(t, device.Limits{})
	dc, uc := w.startDevice("openid profile groups offline_access")
	if rec, err := w.store.GetDeviceCodeByUserCode(t.Context(), strings.ReplaceAll(uc, "-", "")); err != nil || rec.ID != secret.Hash(dc) {
		t.Fatalf("stored record %q, %v: want it keyed by the device code's hash", rec.ID, err)
	}
	w.wantPoll(dc, "authorization_pending")
	w.clock.Advance(5 * time.Second)
	w.wantPoll(dc, "authorization_pending")

	b := w.browser()
	resp, body := b.devicePage(uc)
	for _, want := range []string{"ghbroker CLI", uc, "groups", "offline_access", `id="approve"`, `id="deny"`} {
		if !strings.Contains(body, want) {
			t.Errorf("approval page lacks %q:\n%s", want, body)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("approval page CSP = %q", csp)
	}
	resp, body = b.decide(uc, "approve")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="device-approved"`) {
		t.Fatalf("approve = %d\n%s", resp.StatusCode, body)
	}
	w.clock.Advance(5 * time.Second)
	st, out := w.poll("cli", "", dc)
	if st != http.StatusOK {
		t.Fatalf("poll after approval = %d %v", st, out)
	}
	at, err := w.verifier.Verify(out["access_token"].(string), claims.KindAccess)
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	if at.ClientID != "cli" || at.PreferredUsername == "" || len(at.Groups) == 0 {
		t.Errorf("access token claims = %+v", at)
	}
	var idt claims.Claims
	parts := strings.Split(out["id_token"].(string), ".")
	if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || json.Unmarshal(raw, &idt) != nil {
		t.Fatalf("ID token payload: %v", err)
	}
	if idt.Subject != at.Subject || len(idt.Groups) == 0 || !slices.Equal(idt.Audience, []string{"cli"}) {
		t.Errorf("ID token = %+v", idt)
	}
	rt, _ := out["refresh_token"].(string)
	if rt == "" {
		t.Fatal("no refresh token for offline_access")
	}

	// Single use: the next poll gets nothing, and the page says so.
	w.clock.Advance(5 * time.Second)
	w.wantPoll(dc, "invalid_grant")
	if resp, body := b.devicePage(uc); resp.StatusCode != http.StatusGone || !strings.Contains(body, "already used") {
		t.Errorf("page of a used code = %d\n%s", resp.StatusCode, body)
	}
	// The refresh token works like a code flow's.
	st, out, _ = w.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"cli"}}, "", "")
	if st != http.StatusOK || out["access_token"] == nil {
		t.Errorf("refresh = %d %v", st, out)
	}
}

func TestDeviceSlowDown(t *testing.T) {
	w := deviceWorld(t, device.Limits{})
	dc, _ := w.startDevice("openid")
	w.wantPoll(dc, "authorization_pending")
	w.clock.Advance(time.Second)
	w.wantPoll(dc, "slow_down") // interval now 10 s
	w.clock.Advance(6 * time.Second)
	w.wantPoll(dc, "slow_down") // 6 s < 10 s: interval now 15 s
	w.clock.Advance(10 * time.Second)
	w.wantPoll(dc, "slow_down") // 10 s < 15 s: 20 s
	w.clock.Advance(20 * time.Second)
	w.wantPoll(dc, "authorization_pending")
	w.clock.Advance(20 * time.Second)
	w.wantPoll(dc, "authorization_pending")
}

func TestDeviceDenied(t *testing.T) {
	w := deviceWorld(t, device.Limits{})
	dc, uc := w.startDevice("openid")
	resp, body := w.browser().decide(uc, "deny")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="device-denied"`) {
		t.Fatalf("deny = %d\n%s", resp.StatusCode, body)
	}
	w.wantPoll(dc, "access_denied")
}

func TestDeviceExpired(t *testing.T) {
	w := deviceWorld(t, device.Limits{})
	dc, uc := w.startDevice("openid")
	b := w.browser()
	resp, body := b.devicePage(uc)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("page of a fresh code = %d", resp.StatusCode)
	}
	token := html.UnescapeString(csrfRe.FindStringSubmatch(body)[1])
	w.clock.Advance(10 * time.Minute)
	w.wantPoll(dc, "expired_token")
	resp, body = b.devicePage(uc)
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "expired") {
		t.Errorf("page of an expired code = %d\n%s", resp.StatusCode, body)
	}
	// An approval of a page opened before the deadline is refused too.
	resp, body = b.postForm("/device", url.Values{"csrf": {token}, "user_code": {uc}, "action": {"approve"}})
	if resp.StatusCode != http.StatusGone {
		t.Errorf("approving an expired code = %d\n%s", resp.StatusCode, body)
	}
	w.wantPoll(dc, "expired_token")
}

func TestDeviceClients(t *testing.T) {
	w := deviceWorld(t, device.Limits{})
	for _, tc := range []struct {
		name       string
		form       url.Values
		id, secret string
		status     int
		code       string
	}{
		{"unknown client", url.Values{"client_id": {"nobody"}}, "", "", 401, "invalid_client"},
		{"no client", url.Values{}, "", "", 401, "invalid_client"},
		{"client without the grant", nil, "grafana", rpSecret, 400, "unauthorized_client"},
		{"confidential client without its secret", url.Values{"client_id": {"kube"}}, "", "", 401, "invalid_client"},
		{"wrong secret", nil, "kube", "nope", 401, "invalid_client"},
		{"scope not allowed without openid", url.Values{"client_id": {"cli"}, "scope": {"groups"}}, "", "", 400, "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, out, _ := w.post("/device/code", tc.form, tc.id, tc.secret)
			if st != tc.status || out["error"] != tc.code {
				t.Errorf("/device/code = %d %v, want %d %s", st, out, tc.status, tc.code)
			}
		})
	}
	st, out, _ := w.post("/device/code", url.Values{"scope": {"openid"}}, "kube", "kube-secret-0123456789abcdef0123456")
	if st != http.StatusOK {
		t.Fatalf("confidential /device/code = %d %v", st, out)
	}
	kubeCode := out["device_code"].(string)
	// Another client cannot poll with it; a client without the grant may
	// not poll at all; unknown codes are invalid_grant.
	w.wantPoll(kubeCode, "invalid_grant")
	if st, out := w.poll("grafana", rpSecret, kubeCode); st != 400 || out["error"] != "unauthorized_client" {
		t.Errorf("grafana polling = %d %v", st, out)
	}
	w.wantPoll("made-up", "invalid_grant")
	if st, out := w.poll("kube", "kube-secret-0123456789abcdef0123456", kubeCode); st != 400 || out["error"] != "authorization_pending" {
		t.Errorf("kube polling = %d %v", st, out)
	}
	// A device-only client has no code flow.
	if st, out, _ := w.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {"cli"}}, "", ""); st != 400 || out["error"] != "unauthorized_client" {
		t.Errorf("cli authorization_code = %d %v", st, out)
	}
	if resp, _ := w.browser().get(w.issuer + "/authorize?response_type=code&scope=openid&client_id=cli"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("cli /authorize = %d", resp.StatusCode)
	}
}

func TestDeviceCodeEntry(t *testing.T) {
	w := deviceWorld(t, device.Limits{})
	_, uc := w.startDevice("openid")
	b := w.browser()
	// Signed out, the code survives the trip through /login.
	resp, _ := b.get(w.issuer + "/device?user_code=" + uc)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther ||
		loc != w.issuer+"/login?rd="+url.QueryEscape("/device?user_code="+uc) {
		t.Fatalf("signed-out /device = %d %q", resp.StatusCode, loc)
	}
	// Lower case, no hyphen, spaces: the same code.
	typed := "  " + strings.ToLower(strings.ReplaceAll(uc, "-", "")) + " "
	resp, body := b.devicePage(typed)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, uc) || !strings.Contains(body, `id="approve"`) {
		t.Fatalf("typed %q: %d\n%s", typed, resp.StatusCode, body)
	}
	resp, body = b.get(w.issuer + "/device")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="user_code"`) {
		t.Errorf("entry form = %d\n%s", resp.StatusCode, body)
	}
	resp, body = b.get(w.issuer + "/device?user_code=AEIO-UAEI")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "8 letters") {
		t.Errorf("malformed code = %d\n%s", resp.StatusCode, body)
	}
}

func TestDeviceWrongCodesLimited(t *testing.T) {
	w := deviceWorld(t, device.Limits{SessionBurst: 3, SessionRefill: 2 * time.Minute, GlobalBurst: 100, GlobalRefill: time.Second})
	_, uc := w.startDevice("openid")
	wrong := "BBBB-BBBB"
	if uc == wrong {
		wrong = "CCCC-CCCC"
	}
	b := w.browser()
	_, body := b.devicePage(uc) // a right code costs nothing
	m := csrfRe.FindStringSubmatch(body)
	for i := range 3 {
		if resp, body := b.devicePage(wrong); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "No sign-in request has that code") {
			t.Fatalf("wrong code %d = %d\n%s", i, resp.StatusCode, body)
		}
	}
	// Over budget even the right code is refused, without a lookup.
	resp, body := b.devicePage(uc)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many wrong codes") {
		t.Fatalf("over budget = %d\n%s", resp.StatusCode, body)
	}
	// The approval POST spends the same budget.
	if resp, _ := b.postForm("/device", url.Values{"csrf": {html.UnescapeString(m[1])}, "user_code": {uc}, "action": {"approve"}}); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("approve over budget = %d", resp.StatusCode)
	}
	// Another browser session has its own budget.
	if resp, _ := w.browser().devicePage(uc); resp.StatusCode != http.StatusOK {
		t.Errorf("another session = %d", resp.StatusCode)
	}
	// One token comes back per refill interval.
	w.clock.Advance(2 * time.Minute)
	if resp, _ := b.devicePage(uc); resp.StatusCode != http.StatusOK {
		t.Errorf("after a refill = %d", resp.StatusCode)
	}
	if resp, _ := b.devicePage(wrong); resp.StatusCode != http.StatusNotFound {
		t.Errorf("wrong code after a refill = %d", resp.StatusCode)
	}
	if resp, _ := b.devicePage(uc); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after spending the refill = %d", resp.StatusCode)
	}
}

func TestDeviceApprovalCSRF(t *testing.T) {
	w := deviceWorld(t, device.Limits{})
	dc, uc := w.startDevice("openid")
	alice, other := w.browser(), w.browser()
	_, otherBody := other.devicePage(uc)
	otherToken := html.UnescapeString(csrfRe.FindStringSubmatch(otherBody)[1])
	if _, body := alice.devicePage(uc); html.UnescapeString(csrfRe.FindStringSubmatch(body)[1]) == otherToken {
		t.Fatal("two sessions got the same CSRF token")
	}
	for name, form := range map[string]url.Values{
		"no token":            {"user_code": {uc}, "action": {"approve"}},
		"made-up token":       {"csrf": {"AAAA"}, "user_code": {uc}, "action": {"approve"}},
		"another session's":   {"csrf": {otherToken}, "user_code": {uc}, "action": {"approve"}},
		"token with no value": {"csrf": {""}, "user_code": {uc}, "action": {"approve"}},
	} {
		if resp, body := alice.postForm("/device", form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d\n%s", name, resp.StatusCode, body)
		}
	}
	w.wantPoll(dc, "authorization_pending")
	// Signed out, a POST goes to sign-in and approves nothing.
	if resp, _ := w.browser().postForm("/device", url.Values{"csrf": {otherToken}, "user_code": {uc}, "action": {"approve"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("signed-out POST = %d", resp.StatusCode)
	}
	w.clock.Advance(5 * time.Second)
	w.wantPoll(dc, "authorization_pending")
}

// TestDeviceRedeemedOnce races polls of an approved code: exactly one gets
// tokens, because the record is marked redeemed in the transaction that
// reads it.
func TestDeviceRedeemedOnce(t *testing.T) {
	w := deviceWorld(t, device.Limits{})
	dc, uc := w.startDevice("openid")
	if resp, _ := w.browser().decide(uc, "approve"); resp.StatusCode != http.StatusOK {
		t.Fatalf("approve = %d", resp.StatusCode)
	}
	const n = 8
	results := make(chan int, n)
	for range n {
		go func() {
			st, _ := w.poll("cli", "", dc)
			results <- st
		}()
	}
	ok := 0
	for range n {
		if <-results == http.StatusOK {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent polls got tokens, want exactly 1", ok, n)
	}
}
