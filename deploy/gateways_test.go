package deploy

import (
	"os"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ghbroker/ghbroker/authz"
)

// genericDocs reads a multi-document YAML file of kinds that have no
// schema here (Traefik, Istio, API server configuration) as generic values,
// refusing duplicate keys.
func genericDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, doc := range splitYAML(raw) {
		j, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(j, &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

func kindOf(doc map[string]any) string { return str(doc, "kind") }

func specOf(doc map[string]any) map[string]any {
	s, _ := doc["spec"].(map[string]any)
	return s
}

func TestTraefikMiddlewareAgreesWithTheBroker(t *testing.T) {
	cfg, _ := loadConfig(t)
	r := mustRender(t)["authz-replicas"]
	middlewares := map[string]bool{}
	var routes []map[string]any
	for _, doc := range genericDocs(t, "traefik/middleware.yaml") {
		if !strings.HasPrefix(str(doc, "apiVersion"), "traefik.io/") {
			t.Errorf("traefik/middleware.yaml: apiVersion %s, want traefik.io/v1alpha1", doc["apiVersion"])
		}
		md, _ := doc["metadata"].(map[string]any)
		switch kindOf(doc) {
		case "Middleware":
			middlewares[str(md, "namespace")+"/"+str(md, "name")] = true
			fa, _ := specOf(doc)["forwardAuth"].(map[string]any)
			be, rest, err := resolveAddress(r, str(fa, "address"))
			if err != nil {
				t.Errorf("forwardAuth address: %v", err)
			} else {
				checkDialect(t, "forwardAuth address "+str(fa, "address"), cfg, be, rest, authz.DialectTraefik)
			}
			got := strList(fa, "authResponseHeaders")
			for _, h := range append(slices.Clone(identityHeaders), "Authorization") {
				if !slices.Contains(got, h) {
					t.Errorf("forwardAuth authResponseHeaders lacks %s", h)
				}
			}
			if fa["trustForwardHeader"] == true {
				t.Error("forwardAuth trustForwardHeader: true lets clients choose the checked URL unless Traefik sits behind trusted proxies")
			}
		case "IngressRoute":
			routes = append(routes, doc)
		default:
			t.Errorf("traefik/middleware.yaml: unexpected kind %s", kindOf(doc))
		}
	}
	for _, doc := range routes {
		md, _ := doc["metadata"].(map[string]any)
		for _, rt := range specOf(doc)["routes"].([]any) {
			for _, m := range rt.(map[string]any)["middlewares"].([]any) {
				mm := m.(map[string]any)
				ns := str(mm, "namespace")
				if ns == "" {
					ns = str(md, "namespace")
				}
				if !middlewares[ns+"/"+str(mm, "name")] {
					t.Errorf("IngressRoute %s uses middleware %s/%s, which the file does not define", md["name"], ns, mm["name"])
				}
			}
			match := str(rt.(map[string]any), "match")
			host := strings.TrimSuffix(strings.TrimPrefix(match, "Host(`"), "`)")
			if policyRuleFor(cfg, host) == nil {
				t.Errorf("IngressRoute %s: no policy rule names %s", md["name"], host)
			}
		}
	}
	if len(middlewares) == 0 || len(routes) == 0 {
		t.Error("traefik/middleware.yaml needs a Middleware and an IngressRoute using it")
	}
}

func TestIstioRequestAuthenticationAgreesWithTheBroker(t *testing.T) {
	cfg, _ := loadConfig(t)
	sawRA, sawAP := false, false
	for _, doc := range genericDocs(t, "istio/requestauthentication.yaml") {
		switch kindOf(doc) {
		case "RequestAuthentication":
			sawRA = true
			for _, r := range specOf(doc)["jwtRules"].([]any) {
				rule := r.(map[string]any)
				if str(rule, "issuer") != cfg.Issuer {
					t.Errorf("jwtRules issuer %s, want %s", rule["issuer"], cfg.Issuer)
				}
				if str(rule, "jwksUri") != cfg.Issuer+"/keys" {
					t.Errorf("jwtRules jwksUri %s, want %s/keys", rule["jwksUri"], cfg.Issuer)
				}
				// Session and access tokens both carry the issuer as audience.
				if !slices.Contains(strList(rule, "audiences"), cfg.Issuer) {
					t.Errorf("jwtRules audiences %v lack the issuer", rule["audiences"])
				}
			}
		case "AuthorizationPolicy":
			sawAP = true
			for _, r := range specOf(doc)["rules"].([]any) {
				rule := r.(map[string]any)
				for _, f := range rule["from"].([]any) {
					src := f.(map[string]any)["source"].(map[string]any)
					for _, p := range strList(src, "requestPrincipals") {
						if !strings.HasPrefix(p, cfg.Issuer+"/") {
							t.Errorf("requestPrincipals %s: principals are issuer/sub", p)
						}
					}
				}
				for _, w := range rule["when"].([]any) {
					for _, g := range strList(w.(map[string]any), "values") {
						org, _, _ := strings.Cut(g, "/")
						if !slices.Contains(cfg.GitHub.AllowedOrgs, org) {
							t.Errorf("AuthorizationPolicy value %s is outside github.allowed_orgs", g)
						}
					}
				}
			}
		default:
			t.Errorf("istio/requestauthentication.yaml: unexpected kind %s", kindOf(doc))
		}
	}
	if !sawRA || !sawAP {
		t.Error("want a RequestAuthentication and an AuthorizationPolicy")
	}
}

func TestKubernetesAuthenticationConfigAgreesWithTheBroker(t *testing.T) {
	cfg, _ := loadConfig(t)
	docs := genericDocs(t, "kubernetes-oidc/authentication-config.yaml")
	if len(docs) != 1 || kindOf(docs[0]) != "AuthenticationConfiguration" {
		t.Fatal("kubernetes-oidc/authentication-config.yaml must hold one AuthenticationConfiguration")
	}
	for _, j := range docs[0]["jwt"].([]any) {
		jm := j.(map[string]any)
		iss := jm["issuer"].(map[string]any)
		if str(iss, "url") != cfg.Issuer {
			t.Errorf("issuer.url %s, want %s", iss["url"], cfg.Issuer)
		}
		cm := jm["claimMappings"].(map[string]any)
		if c := str(cm["groups"].(map[string]any), "claim"); c != "groups" {
			t.Errorf("claimMappings.groups.claim %s, want groups", c)
		}
		if c := str(cm["username"].(map[string]any), "claim"); c != "sub" {
			t.Errorf("claimMappings.username.claim %s: sub is the stable GitHub user id", c)
		}
	}
}
