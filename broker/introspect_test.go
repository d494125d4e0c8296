package broker_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
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
	status, body, _ = w.post("/introspect", url.Values{"token": {tok.AccessToken}}, "other", "other-secret")
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
