package broker_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	brokeroidc "github.com/ghbroker/ghbroker/broker/oidc"
)

// backchannelRP is a relying party's back-channel logout endpoint: it
// verifies each logout token against the broker's JWKS with go-oidc and
// keeps the claims.
type backchannelRP struct {
	mu     sync.Mutex
	tokens []map[string]any
	errs   []string
}

func (rp *backchannelRP) handler(w *world) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		ctx := oidc.ClientContext(r.Context(), w.browser().client)
		raw, err := oidc.NewRemoteKeySet(ctx, w.issuer+"/keys").VerifySignature(ctx, r.PostFormValue("logout_token"))
		rp.mu.Lock()
		defer rp.mu.Unlock()
		if err != nil {
			rp.errs = append(rp.errs, err.Error())
			http.Error(rw, "bad token", http.StatusBadRequest)
			return
		}
		var c map[string]any
		_ = json.Unmarshal(raw, &c)
		rp.tokens = append(rp.tokens, c)
	})
}

func (rp *backchannelRP) received() []map[string]any {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return append([]map[string]any(nil), rp.tokens...)
}

// TestBackchannelLogout: when a user signs out, a relying party that
// asked for it receives an OpenID Back-Channel Logout 1.0 logout token it
// can verify against the JWKS, naming the session and the user; one that
// never got tokens of the session hears nothing.
func TestBackchannelLogout(t *testing.T) {
	rp := &backchannelRP{}
	var rpSrv *httptest.Server
	w := newWorld(t, worldOptions{clients: func(w *world) []brokeroidc.Client {
		rpSrv = httptest.NewServer(rp.handler(w))
		t.Cleanup(rpSrv.Close)
		return []brokeroidc.Client{
			{ID: "grafana", Secret: rpSecret, RedirectURIs: []string{rpCallback(w)}, BackchannelLogoutURI: rpSrv.URL + "/backchannel"},
			{ID: "other", Secret: "other-secret-0123456789abcdef01234", RedirectURIs: []string{"http://other.example.test:" + w.port + "/cb"},
				BackchannelLogoutURI: rpSrv.URL + "/never"},
		}
	}})
	b := w.browser()
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	tok, idt, _ := p.codeFlow(b)
	if tok.AccessToken == "" {
		t.Fatal("no tokens")
	}
	var idClaims struct {
		SID string `json:"sid"`
	}
	_ = idt.Claims(&idClaims)
	_, body := b.get(w.issuer + "/logout")
	if resp, _ := b.confirmLogout(body); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(rp.received()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := rp.received()
	if len(got) != 1 {
		t.Fatalf("logout tokens received: %d (errors %v)", len(got), rp.errs)
	}
	c := got[0]
	events, _ := c["events"].(map[string]any)
	if _, ok := events["http://schemas.openid.net/event/backchannel-logout"]; !ok || c["iss"] != w.issuer ||
		c["sid"] != idClaims.SID || c["sub"] != idt.Subject || c["nonce"] != nil || c["jti"] == nil {
		t.Errorf("logout token claims %v", c)
	}
	if aud, _ := c["aud"].([]any); len(aud) != 1 || aud[0] != "grafana" {
		if c["aud"] != "grafana" {
			t.Errorf("aud %v", c["aud"])
		}
	}
	exp, _ := c["exp"].(float64)
	iat, _ := c["iat"].(float64)
	if d := exp - iat; d < 60 || d > 300 {
		t.Errorf("logout token lives %v s, want about 2 minutes", d)
	}
	resp, doc := w.browser().get(w.issuer + "/.well-known/openid-configuration")
	if resp.StatusCode != 200 || !strings.Contains(doc, `"backchannel_logout_supported":true`) || !strings.Contains(doc, `"backchannel_logout_session_supported":true`) {
		t.Errorf("discovery does not advertise back-channel logout")
	}
}
