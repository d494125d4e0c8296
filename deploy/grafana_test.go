package deploy

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ghbroker/ghbroker/internal/config"
)

// parseINI reads Grafana's ini format: [section], key = value, comments
// starting with ; or #.
func parseINI(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	section := ""
	for i, line := range strings.Split(readText(t, path), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if out[section] != nil {
				t.Errorf("%s:%d: section [%s] twice", path, i+1, section)
			}
			out[section] = map[string]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key = value line in a section", path, i+1)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if _, dup := out[section][k]; dup {
				t.Errorf("%s:%d: %s set twice", path, i+1, k)
			}
			out[section][k] = v
		}
	}
	return out
}

func TestGrafanaHelmValuesMatchGrafanaIni(t *testing.T) {
	ini := parseINI(t, "grafana/grafana.ini")
	raw, err := os.ReadFile("grafana/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		EnvValueFrom map[string]any            `json:"envValueFrom"`
		GrafanaIni   map[string]map[string]any `json:"grafana.ini"`
		Ingress      map[string]any            `json:"ingress"`
	}
	if err := yaml.UnmarshalStrict(raw, &values); err != nil {
		t.Fatalf("grafana/values.yaml: %v", err)
	}
	got := map[string]map[string]string{}
	for section, kv := range values.GrafanaIni {
		got[section] = map[string]string{}
		for k, v := range kv {
			got[section][k] = fmt.Sprint(v)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(ini) {
		for section := range ini {
			for k, v := range ini[section] {
				if got[section][k] != v {
					t.Errorf("values.yaml grafana.ini.%s.%s = %q, grafana.ini has %q", section, k, got[section][k], v)
				}
			}
		}
		for section := range got {
			for k := range got[section] {
				if _, ok := ini[section][k]; !ok {
					t.Errorf("values.yaml sets grafana.ini.%s.%s, which grafana.ini does not", section, k)
				}
			}
		}
	}
	envRef := regexp.MustCompile(`^\$__env\{([A-Z0-9_]+)\}$`).FindStringSubmatch(ini["auth.generic_oauth"]["client_secret"])
	if envRef == nil {
		t.Fatal("client_secret must come from the environment ($__env{NAME}), never the file")
	}
	if _, ok := values.EnvValueFrom[envRef[1]]; !ok {
		t.Errorf("values.yaml does not set %s from a Secret (envValueFrom)", envRef[1])
	}
}

func TestGrafanaAgreesWithTheBroker(t *testing.T) {
	cfg, _ := loadConfig(t)
	ini := parseINI(t, "grafana/grafana.ini")
	g := ini["auth.generic_oauth"]
	for key, want := range map[string]string{
		"auth_url":              cfg.Issuer + "/authorize",
		"token_url":             cfg.Issuer + "/token",
		"api_url":               cfg.Issuer + "/userinfo",
		"jwk_set_url":           cfg.Issuer + "/keys",
		"enabled":               "true",
		"use_pkce":              "true",
		"use_refresh_token":     "true",
		"auth_style":            "InHeader",
		"login_attribute_path":  "preferred_username",
		"groups_attribute_path": "groups",
		"scopes":                "openid profile email groups offline_access",
	} {
		if g[key] != want {
			t.Errorf("[auth.generic_oauth] %s = %q, want %q", key, g[key], want)
		}
	}
	var client *config.Client
	for i := range cfg.Clients {
		if cfg.Clients[i].ID == g["client_id"] {
			client = &cfg.Clients[i]
		}
	}
	if client == nil {
		t.Fatalf("client_id %q is not a client in deploy/%s", g["client_id"], baseConfigPath)
	}
	root := strings.TrimSuffix(ini["server"]["root_url"], "/")
	if cb := root + "/login/generic_oauth"; !slices.Contains(client.RedirectURIs, cb) {
		t.Errorf("Grafana's callback %s is not in the client's redirect_uris %v", cb, client.RedirectURIs)
	}

	// Sign-out: the broker's RP-initiated logout, back to a registered URI.
	so, err := url.Parse(g["signout_redirect_url"])
	if err != nil {
		t.Fatal(err)
	}
	if base := so.Scheme + "://" + so.Host + so.Path; base != cfg.Issuer+"/logout" {
		t.Errorf("signout_redirect_url goes to %s, want %s/logout", base, cfg.Issuer)
	}
	if so.Query().Get("client_id") != client.ID {
		t.Errorf("signout_redirect_url client_id %q, want %s", so.Query().Get("client_id"), client.ID)
	}
	if p := so.Query().Get("post_logout_redirect_uri"); !slices.Contains(client.PostLogoutRedirectURIs, p) {
		t.Errorf("signout_redirect_url returns to %q, which is not in post_logout_redirect_uris %v", p, client.PostLogoutRedirectURIs)
	}

	// Everyone Grafana admits must get past the gateway's check first.
	rule := policyRuleFor(cfg, strings.TrimPrefix(strings.TrimPrefix(root, "https://"), "http://"))
	if rule == nil {
		t.Fatalf("no policy rule for Grafana's host %s", root)
	}
	groups := strings.Fields(strings.ReplaceAll(g["allowed_groups"], ",", " "))
	groups = append(groups, regexp.MustCompile(`'([a-z0-9-]+/[a-z0-9-]+)'`).FindAllString(g["role_attribute_path"], -1)...)
	for _, grp := range groups {
		grp = strings.Trim(grp, "'")
		if !slices.Contains(rule.Allow.Groups, grp) && !rule.Public && !rule.Allow.Authenticated {
			t.Errorf("Grafana admits group %s, but the policy for %s lets only %v through", grp, root, rule.Allow.Groups)
		}
	}
}
