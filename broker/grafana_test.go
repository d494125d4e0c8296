package broker_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	jmespath "github.com/jmespath-community/go-jmespath"
	"golang.org/x/oauth2"
)

// docGrafanaSetting returns a setting of the [auth.generic_oauth] block
// docs/grafana.md documents, so the test evaluates exactly what users copy.
func docGrafanaSetting(t *testing.T, key string) string {
	t.Helper()
	raw, err := os.ReadFile("../docs/grafana.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + ` = (.+)$`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("docs/grafana.md has no %q in its [auth.generic_oauth] block", key)
	}
	return strings.TrimSpace(string(m[1]))
}

// grafanaUserInfo does what Grafana's generic OAuth connector does with a
// token response: decode the id_token payload without verifying it, then
// GET api_url with the access token, first non-empty value winning.
func grafanaUserInfo(t *testing.T, w *world, tok *oauth2.Token) map[string]any {
	t.Helper()
	merged := map[string]any{}
	if raw, ok := tok.Extra("id_token").(string); ok {
		parts := strings.Split(raw, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(payload, &merged); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, w.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := w.browser().client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("api_url: %d %s", resp.StatusCode, body)
	}
	var api map[string]any
	if err := json.Unmarshal(body, &api); err != nil {
		t.Fatal(err)
	}
	for k, v := range api {
		if _, ok := merged[k]; !ok {
			merged[k] = v
		}
	}
	return merged
}

// TestGrafanaGenericOAuth reproduces Grafana's generic OAuth login for three
// fixture users, with both auth styles, and evaluates docs/grafana.md's
// role_attribute_path with the JMESPath implementation Grafana uses.
func TestGrafanaGenericOAuth(t *testing.T) {
	rolePath := docGrafanaSetting(t, "role_attribute_path")
	loginPath := docGrafanaSetting(t, "login_attribute_path")
	groupsPath := docGrafanaSetting(t, "groups_attribute_path")
	scopes := strings.Fields(docGrafanaSetting(t, "scopes"))
	w := oidcWorld(t)
	for _, tc := range []struct {
		login string
		style oauth2.AuthStyle
		role  string
	}{
		{"alice", oauth2.AuthStyleInHeader, "Admin"},  // acme/grafana-admins
		{"carol", oauth2.AuthStyleInParams, "Editor"}, // acme/sre
		{"bob", oauth2.AuthStyleInHeader, "Viewer"},   // acme/dev only
	} {
		t.Run(tc.login, func(t *testing.T) {
			w.gh.SetAutoApprove(tc.login)
			p := w.rp("grafana", rpSecret, rpCallback(w), tc.style, scopes...)
			tok, _, _ := p.codeFlow(w.browser())
			info := grafanaUserInfo(t, w, tok)
			for path, want := range map[string]any{rolePath: tc.role, loginPath: tc.login} {
				got, err := jmespath.Search(path, info)
				if err != nil {
					t.Fatalf("JMESPath %q: %v", path, err)
				}
				if got != want {
					t.Errorf("%s → %v, want %v", path, got, want)
				}
			}
			if g, err := jmespath.Search(groupsPath, info); err != nil || g == nil {
				t.Errorf("groups_attribute_path %q → %v %v", groupsPath, g, err)
			}
			if info["email"] == nil || info["sub"] == nil {
				t.Errorf("Grafana needs email and sub: %v", info)
			}
		})
	}
}
