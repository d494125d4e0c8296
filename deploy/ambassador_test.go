package deploy

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/ghbroker/ghbroker/authz"
	"github.com/ghbroker/ghbroker/internal/config"
)

// Ambassador/Emissary resources are checked as generic values: their
// shape is validated against the CRD schema elsewhere.

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func strList(m map[string]any, key string) []string {
	var out []string
	list, _ := m[key].([]any)
	for _, v := range list {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func issuerHost(t *testing.T, cfg *config.Config) string {
	t.Helper()
	u, err := url.Parse(cfg.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// hostPatternMatches reports whether pattern (an exact host or "*.domain")
// covers host (an exact host or the same wildcard).
func hostPatternMatches(pattern, host string) bool {
	if pattern == host {
		return true
	}
	suffix, ok := strings.CutPrefix(pattern, "*.")
	if !ok || strings.HasPrefix(host, "*.") {
		return false
	}
	return strings.HasSuffix(host, "."+suffix) && !strings.Contains(strings.TrimSuffix(host, "."+suffix), ".")
}

// policyRuleFor returns the first policy rule naming host.
func policyRuleFor(cfg *config.Config, host string) *authz.RuleConfig {
	for i, r := range cfg.Policy.Rules {
		for _, h := range r.Hosts {
			if hostPatternMatches(h, host) {
				return &cfg.Policy.Rules[i]
			}
		}
	}
	return nil
}

// checkAuthService checks that an AuthService (v3alpha1 spec, or the flat
// ambassador/v1 annotation object) reaches the right ghbroker listener.
func checkAuthService(t *testing.T, where string, r *rendered, cfg *config.Config, spec map[string]any) (proto string) {
	t.Helper()
	ports := configPorts(t, cfg)
	be, rest, err := resolveAddress(r, str(spec, "auth_service"))
	if err != nil {
		t.Errorf("%s: auth_service: %v", where, err)
		return ""
	}
	if rest != "/" {
		t.Errorf("%s: auth_service %q carries a path; use path_prefix", where, str(spec, "auth_service"))
	}
	proto = str(spec, "proto")
	if proto == "" {
		proto = "http"
	}
	switch proto {
	case "grpc":
		if be.Port.ContainerPort != ports["grpc"] {
			t.Errorf("%s: gRPC AuthService reaches port %d, not authz.grpc_listen %d", where, be.Port.ContainerPort, ports["grpc"])
		}
		if str(spec, "protocol_version") != "v3" {
			t.Errorf("%s: a gRPC AuthService needs protocol_version: v3 (Emissary 3.x has no v2)", where)
		}
	case "http":
		switch prefix := str(spec, "path_prefix"); prefix {
		case "":
			if be.Port.ContainerPort != ports["authz"] {
				t.Errorf("%s: an HTTP AuthService without path_prefix must reach authz.listen %d, not port %d", where, ports["authz"], be.Port.ContainerPort)
			}
		case "/authz-envoy", "/authz":
			if be.Port.ContainerPort != ports["http"] {
				t.Errorf("%s: path_prefix %s is served by the main listener %d, not %s port %d", where, prefix, ports["http"], be.Command, be.Port.ContainerPort)
			}
		default:
			t.Errorf("%s: path_prefix %q: the broker serves Envoy checks under /authz-envoy (or /authz) on the main listener, or at every path of authz.listen", where, prefix)
		}
		checkDialect(t, where, cfg, be, str(spec, "path_prefix"), authz.DialectAmbassador)
		reqHeaders := strList(spec, "allowed_request_headers")
		if !slices.Contains(reqHeaders, "accept") {
			t.Errorf("%s: allowed_request_headers must list accept, or every GET looks like a browser navigation", where)
		}
		authHeaders := strList(spec, "allowed_authorization_headers")
		for _, h := range identityHeaders {
			if !slices.Contains(authHeaders, strings.ToLower(h)) {
				t.Errorf("%s: allowed_authorization_headers lacks %s, so Emissary drops it", where, strings.ToLower(h))
			}
		}
		if slices.Contains(authHeaders, "content-type") {
			t.Errorf("%s: content-type in allowed_authorization_headers overwrites every allowed request's Content-Type", where)
		}
	default:
		t.Errorf("%s: proto %q", where, proto)
	}
	if spec["failure_mode_allow"] == true {
		t.Errorf("%s: failure_mode_allow lets everyone in when the broker is down", where)
	}
	return proto
}

// checkBrokerMapping checks the Mapping of the issuer's host.
func checkBrokerMapping(t *testing.T, where string, r *rendered, cfg *config.Config, spec map[string]any) {
	t.Helper()
	if spec["bypass_auth"] != true {
		t.Errorf("%s: the Mapping of the broker's own host needs bypass_auth: true, or signing in would loop", where)
	}
	be, _, err := resolveAddress(r, str(spec, "service"))
	if err != nil {
		t.Errorf("%s: service: %v", where, err)
		return
	}
	if be.Command != "serve" || be.Port.ContainerPort != portOf(t, cfg.Listen) {
		t.Errorf("%s: the broker's Mapping reaches %s port %d, not the broker's main listener", where, be.Command, be.Port.ContainerPort)
	}
}

func TestAmbassadorAgreesWithTheBroker(t *testing.T) {
	cfg, _ := loadConfig(t)
	authHost := issuerHost(t, cfg)
	all := mustRender(t)
	certs := custom(all["cert-manager"], "cert-manager.io", "Certificate")
	sawGRPC, sawHTTP, sawHTTPPrefix := false, false, false
	for dir, r := range all {
		if len(typed[*appsv1.Deployment](r)) == 0 {
			continue // a component (ambassador/routes): checked where it is used
		}
		authServices := custom(r, "getambassador.io", "AuthService")
		mappings := custom(r, "getambassador.io", "Mapping")
		hosts := custom(r, "getambassador.io", "Host")
		if len(authServices) > 1 {
			t.Errorf("deploy/%s: %d AuthServices: Emissary round-robins between them", dir, len(authServices))
		}
		proto := ""
		for _, as := range authServices {
			proto = checkAuthService(t, "deploy/"+dir+": AuthService "+as.Name, r, cfg, as.spec())
			switch {
			case proto == "grpc":
				sawGRPC = true
			case str(as.spec(), "path_prefix") != "":
				sawHTTPPrefix = true
			default:
				sawHTTP = true
			}
		}
		brokerMapping, brokerMetricsHidden := false, false
		for _, m := range mappings {
			spec := m.spec()
			where := "deploy/" + dir + ": Mapping " + m.Name
			host := str(spec, "hostname")
			if host == "" {
				t.Errorf("%s: no hostname", where)
				continue
			}
			if host == authHost {
				checkBrokerMapping(t, where, r, cfg, spec)
				switch prefix := str(spec, "prefix"); prefix {
				case "/":
					brokerMapping = true
					if str(spec, "rewrite") != "" {
						t.Errorf("%s: the broker's Mapping rewrites paths", where)
					}
				case "/metrics":
					brokerMetricsHidden = str(spec, "rewrite") != "" && str(spec, "rewrite") != "/metrics"
				}
			} else if spec["bypass_auth"] != true && policyRuleFor(cfg, host) == nil {
				t.Errorf("%s: %s is checked but no policy rule names it (policy.default %s)", where, host, cfg.Policy.Default)
			}
			if ext, ok := spec["auth_context_extensions"].(map[string]any); ok {
				if len(authServices) > 0 && proto != "grpc" {
					t.Errorf("%s: auth_context_extensions work in gRPC mode only", where)
				}
				for k, v := range ext {
					if k != "allow_groups" && k != "allow_users" {
						t.Errorf("%s: auth_context_extensions key %q: the broker reads allow_groups and allow_users", where, k)
					}
					if k == "allow_groups" {
						for _, g := range strings.Split(v.(string), ",") {
							org, _, _ := strings.Cut(g, "/")
							if !slices.Contains(cfg.GitHub.AllowedOrgs, org) {
								t.Errorf("%s: group %q is outside github.allowed_orgs: nobody has it", where, g)
							}
						}
					}
				}
			}
			// TLS: a Host covers the Mapping's hostname, with a certificate
			// from deploy/cert-manager that covers the Host.
			var host0 map[string]any
			var hostNS string
			for _, h := range hosts {
				if hostPatternMatches(str(h.spec(), "hostname"), host) {
					host0, hostNS = h.spec(), h.Namespace
				}
			}
			if hosts == nil {
				continue
			}
			if host0 == nil {
				t.Errorf("%s: no Host covers %s", where, host)
				continue
			}
			secret, _ := host0["tlsSecret"].(map[string]any)
			covered := false
			for _, c := range certs {
				cs := c.spec()
				if str(cs, "secretName") == str(secret, "name") && c.Namespace == hostNS && slices.Contains(strList(cs, "dnsNames"), str(host0, "hostname")) {
					covered = true
				}
			}
			if !covered {
				t.Errorf("%s: no Certificate in deploy/cert-manager writes Secret %s/%s for %s", where, hostNS, str(secret, "name"), str(host0, "hostname"))
			}
		}
		if len(authServices) > 0 && !brokerMapping {
			t.Errorf("deploy/%s: an AuthService without a Mapping of / for %s (with bypass_auth)", dir, authHost)
		}
		switch {
		case cfg.Metrics.Listen == "" && len(authServices) > 0 && !brokerMetricsHidden:
			t.Errorf("deploy/%s: the Mapping of %s publishes /metrics; set metrics.listen, or add a /metrics Mapping that rewrites it away", dir, authHost)
		case cfg.Metrics.Listen != "" && brokerMetricsHidden:
			t.Errorf("deploy/%s: a Mapping hides /metrics, which the main listener does not serve (metrics.listen is set): drop it", dir)
		}
	}
	if !sawGRPC || !sawHTTP || !sawHTTPPrefix {
		t.Errorf("want an AuthService in gRPC mode (%v), HTTP mode on authz.listen (%v) and HTTP mode with path_prefix (%v)", sawGRPC, sawHTTP, sawHTTPPrefix)
	}
}

// TestLegacyAnnotations checks the getambassador.io/config annotation of
// older Ambassador: ambassador/v1 objects whose fields are those of the
// v3alpha1 spec (validated against its schema), with the same wiring.
func TestLegacyAnnotations(t *testing.T) {
	cfg, _ := loadConfig(t)
	r := mustRender(t)["ambassador/legacy"]
	if r == nil {
		t.Fatal("deploy/ambassador/legacy did not render")
	}
	var annotation string
	for _, svc := range typed[*corev1.Service](r) {
		if a, ok := svc.Annotations["getambassador.io/config"]; ok {
			annotation = a
		}
	}
	if annotation == "" {
		t.Fatal("no Service carries a getambassador.io/config annotation")
	}
	kinds := map[string]bool{}
	for _, doc := range splitYAML([]byte(annotation)) {
		var obj map[string]any
		if err := yaml.UnmarshalStrict(doc, &obj); err != nil {
			t.Fatal(err)
		}
		if obj["apiVersion"] != "ambassador/v1" {
			t.Errorf("annotation object apiVersion %v, want ambassador/v1", obj["apiVersion"])
		}
		kind, name := str(obj, "kind"), str(obj, "name")
		kinds[kind] = true
		spec := map[string]any{}
		for k, v := range obj {
			if k != "apiVersion" && k != "kind" && k != "name" {
				spec[k] = v
			}
		}
		where := "legacy annotation " + kind + " " + name
		// Same field names as v3alpha1: a misspelt key fails here.
		specJSON, _ := yaml.Marshal(map[string]any{
			"apiVersion": "getambassador.io/v3alpha1", "kind": kind,
			"metadata": map[string]any{"name": name}, "spec": spec,
		})
		o, err := decodeObject(where, specJSON)
		if err != nil {
			t.Fatal(err)
		}
		if err := validateCR(o); err != nil {
			t.Error(err)
		}
		switch kind {
		case "AuthService":
			checkAuthService(t, where, r, cfg, spec)
		case "Mapping":
			if str(spec, "host") == issuerHost(t, cfg) {
				checkBrokerMapping(t, where, r, cfg, spec)
			}
		}
	}
	if !kinds["AuthService"] || !kinds["Mapping"] {
		t.Errorf("the annotation holds %v; want an AuthService and a Mapping", kinds)
	}
}

// TestCertificatesCoverTheHosts: the cert-manager Certificates use the
// example's DNS-01 ClusterIssuer, and cover the issuer's host.
func TestCertificatesCoverTheHosts(t *testing.T) {
	cfg, _ := loadConfig(t)
	r := mustRender(t)["cert-manager"]
	if r == nil {
		t.Fatal("deploy/cert-manager did not render")
	}
	issuers := map[string]bool{}
	for _, ci := range custom(r, "cert-manager.io", "ClusterIssuer") {
		acme, _ := ci.spec()["acme"].(map[string]any)
		solvers, _ := acme["solvers"].([]any)
		for _, s := range solvers {
			if _, ok := s.(map[string]any)["dns01"]; !ok {
				t.Errorf("ClusterIssuer %s: a solver without dns01 (wildcards need DNS-01)", ci.Name)
			}
		}
		issuers[ci.Name] = true
	}
	var names []string
	for _, c := range custom(r, "cert-manager.io", "Certificate") {
		ref, _ := c.spec()["issuerRef"].(map[string]any)
		if str(ref, "kind") != "ClusterIssuer" || !issuers[str(ref, "name")] {
			t.Errorf("Certificate %s: issuerRef %v is not the example's ClusterIssuer", c.Name, ref)
		}
		names = append(names, strList(c.spec(), "dnsNames")...)
	}
	if !slices.Contains(names, issuerHost(t, cfg)) {
		t.Errorf("no Certificate for the issuer's host %s", issuerHost(t, cfg))
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "*.") }) {
		t.Error("no wildcard Certificate for the services")
	}
}
