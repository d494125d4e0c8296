package broker_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestIntrospectionNeedsClientAuthentication: a public client naming
// itself learns nothing (RFC 7662 §2.1), and a confidential client learns
// only about its own tokens; discovery does not offer "none" for it.
func TestIntrospectionNeedsClientAuthentication(t *testing.T) {
	w := oidcWorld(t)
	b := w.browser()
	grafana := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	tok, _, _ := grafana.codeFlow(b)
	if tok.AccessToken == "" {
		t.Fatal("no access token")
	}
	status, body, _ := w.post("/introspect", url.Values{"token": {tok.AccessToken}, "client_id": {"cli"}}, "", "")
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" || body["active"] != nil {
		t.Errorf("public client introspected grafana's token: %d %v", status, body)
	}
	status, body, _ = w.post("/introspect", url.Values{"token": {tok.AccessToken}}, "other", "other-secret-0123456789abcdef01234")
	if status != http.StatusOK || len(body) != 1 || body["active"] != false {
		t.Errorf("another client learned about grafana's token: %d %v", status, body)
	}
	status, body, _ = w.post("/introspect", url.Values{"token": {tok.AccessToken}}, "grafana", rpSecret)
	if status != http.StatusOK || body["active"] != true {
		t.Errorf("grafana's own token: %d %v", status, body)
	}
	resp, doc := w.browser().get(w.issuer + "/.well-known/openid-configuration")
	if resp.StatusCode != http.StatusOK || !jsonListLacks(t, doc, "introspection_endpoint_auth_methods_supported", "none") {
		t.Errorf("discovery offers introspection without client authentication: %s", doc)
	}
}

// jsonListLacks reports whether the JSON object doc has a list under key
// that does not contain v.
func jsonListLacks(t *testing.T, doc, key, v string) bool {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	list, ok := m[key].([]any)
	return ok && len(list) > 0 && !slices.Contains(list, any(v))
}

// TestSecretGuessingIsThrottled: wrong client secrets at /token stop with
// 429 and Retry-After, before the right secret is even compared.
func TestSecretGuessingIsThrottled(t *testing.T) {
	w := oidcWorld(t)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x.y"}}
	for i := range 10 {
		if status, body, _ := w.tokenRequest(form, "grafana", "guess"); status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %v", i, status, body)
		}
	}
	status, body, h := w.tokenRequest(form, "grafana", rpSecret)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" || body["error"] != "invalid_client" {
		t.Fatalf("after 10 wrong secrets: %d %v Retry-After=%q", status, body, h.Get("Retry-After"))
	}
	if !strings.Contains(w.logsString(), "client authentication failed") {
		t.Error("failed client authentication is not logged")
	}
}
