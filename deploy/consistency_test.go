package deploy

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ghbroker/ghbroker/internal/config"
)

const (
	// baseConfigPath is the broker's config, the ConfigMap's content.
	baseConfigPath = "base/config.yaml"
	// configMountPath is where the pods read it (the Dockerfile's default).
	configMountPath = "/etc/ghbroker/config.yaml"
	// secretName is the Secret the broker reads its secrets from.
	secretName = "ghbroker-secrets"
)

// identityHeaders are the headers an allowed check hands to the upstream.
var identityHeaders = []string{"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups"}

// testEnv provides the secrets the example config names.
func testEnv(key string) (string, bool) {
	switch key {
	case config.SecretEnv:
		return "test-github-client-secret", true
	case "GRAFANA_OAUTH_SECRET":
		return "test-grafana-client-secret-0123456789", true
	}
	return "", false
}

// loadConfig parses deploy/base/config.yaml as `ghbroker check-config`
// does.
func loadConfig(t *testing.T) (*config.Config, []byte) {
	t.Helper()
	raw, err := os.ReadFile(baseConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(baseConfigPath, raw, testEnv)
	if err != nil {
		t.Fatalf("the example config does not pass check-config:\n%v", err)
	}
	return cfg, raw
}

// portOf returns the port of a listen address such as ":8080".
func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return int32(n)
}

// configPorts are the container ports the config implies, by port name.
func configPorts(t *testing.T, cfg *config.Config) map[string]int32 {
	t.Helper()
	if cfg.Authz.Listen == "" || cfg.Authz.GRPCListen == "" || cfg.Metrics.Listen == "" {
		t.Fatal("the example config must set authz.listen, authz.grpc_listen and metrics.listen")
	}
	ports := map[string]int32{
		"http":    portOf(t, cfg.Listen),
		"authz":   portOf(t, cfg.Authz.Listen),
		"grpc":    portOf(t, cfg.Authz.GRPCListen),
		"metrics": portOf(t, cfg.Metrics.Listen),
	}
	if cfg.Revocations.Listen != "" {
		ports["revocations"] = portOf(t, cfg.Revocations.Listen)
	}
	return ports
}

// ghbrokerContainer returns the pod template's ghbroker container and its
// command (serve or authz), or nil.
func ghbrokerContainer(d *appsv1.Deployment) (*corev1.Container, string) {
	for i := range d.Spec.Template.Spec.Containers {
		c := &d.Spec.Template.Spec.Containers[i]
		if strings.Contains(c.Image, "ghbroker") && len(c.Args) > 0 {
			return c, c.Args[0]
		}
	}
	return nil, ""
}

// flagValue returns the value of --name in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// resolvePort resolves a named or numbered port against a container.
func resolvePort(c *corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// selectedDeployments returns the Deployments of r whose pods selector
// selects.
func selectedDeployments(r *rendered, namespace string, selector map[string]string) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, d := range workloads(r) {
		if d.Namespace == namespace && selects(selector, d.Spec.Template.Labels) {
			out = append(out, d)
		}
	}
	return out
}

// workloads returns r's Deployments and, seen as Deployments of their pod
// template, its StatefulSets (deploy/ha's etcd), for the checks that only
// look at pods: selectors, ports, policies.
func workloads(r *rendered) []*appsv1.Deployment {
	out := typed[*appsv1.Deployment](r)
	for _, s := range typed[*appsv1.StatefulSet](r) {
		out = append(out, &appsv1.Deployment{ObjectMeta: s.ObjectMeta, Spec: appsv1.DeploymentSpec{
			Replicas: s.Spec.Replicas, Selector: s.Spec.Selector, Template: s.Spec.Template,
		}})
	}
	return out
}

// mainContainer returns the ghbroker container of d, or else its first
// container (etcd's, in deploy/ha).
func mainContainer(d *appsv1.Deployment) *corev1.Container {
	if c, _ := ghbrokerContainer(d); c != nil {
		return c
	}
	if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
		return &cs[0]
	}
	return nil
}

// backend is what a "service.namespace:port" address reaches.
type backend struct {
	Deployment *appsv1.Deployment
	Container  *corev1.Container
	// Command is the container's ghbroker command: serve or authz.
	Command string
	// Port is the container port the Service port targets.
	Port corev1.ContainerPort
}

// resolveAddress follows an address such as "ghbroker-authz.auth:9001",
// "http://ghbroker.auth.svc:8080/authz" or
// "ghbroker.auth.svc.cluster.local:8080" through a Service of r to the
// container port behind it. It returns the path after the address too.
func resolveAddress(r *rendered, addr string) (backend, string, error) {
	rest := addr
	if _, after, ok := strings.Cut(rest, "://"); ok {
		rest = after
	}
	hostport, urlPath, _ := strings.Cut(rest, "/")
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		return backend{}, "", fmt.Errorf("%q: the address needs an explicit port: %v", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return backend{}, "", fmt.Errorf("%q: %v", addr, err)
	}
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return backend{}, "", fmt.Errorf("%q: name the Service's namespace (service.namespace)", addr)
	}
	if suffix := strings.Join(labels[2:], "."); suffix != "" && suffix != "svc" && suffix != "svc.cluster.local" {
		return backend{}, "", fmt.Errorf("%q is not a cluster Service address", addr)
	}
	name, ns := labels[0], labels[1]
	for _, svc := range typed[*corev1.Service](r) {
		if svc.Name != name || svc.Namespace != ns {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if int(sp.Port) != port {
				continue
			}
			deps := selectedDeployments(r, svc.Namespace, svc.Spec.Selector)
			if len(deps) != 1 {
				return backend{}, "", fmt.Errorf("%q: Service %s selects %d Deployments", addr, name, len(deps))
			}
			c, cmd := ghbrokerContainer(deps[0])
			if c == nil {
				return backend{}, "", fmt.Errorf("%q: Deployment %s runs no ghbroker container", addr, deps[0].Name)
			}
			cp, ok := resolvePort(c, sp.TargetPort)
			if !ok {
				return backend{}, "", fmt.Errorf("%q: targetPort %s is not a port of %s", addr, sp.TargetPort.String(), deps[0].Name)
			}
			return backend{Deployment: deps[0], Container: c, Command: cmd, Port: cp}, "/" + urlPath, nil
		}
		return backend{}, "", fmt.Errorf("%q: Service %s.%s has no port %d", addr, name, ns, port)
	}
	return backend{}, "", fmt.Errorf("%q: no Service %s in namespace %s", addr, name, ns)
}

// secretTemplateKeys are the keys of deploy/base/secret.example.yaml.
func secretTemplateKeys(t *testing.T) map[string]bool {
	t.Helper()
	objs := decodeFile(t, "base/secret.example.yaml")
	s, ok := objs[0].Typed.(*corev1.Secret)
	if len(objs) != 1 || !ok || s.Name != secretName {
		t.Fatalf("base/secret.example.yaml must hold exactly the Secret %s", secretName)
	}
	keys := map[string]bool{}
	for k := range s.StringData {
		keys[k] = true
	}
	return keys
}

func TestDefaultListenIsTheManifestsMainPort(t *testing.T) {
	cfg, _ := loadConfig(t)
	ports := configPorts(t, cfg)
	if got := portOf(t, config.DefaultListen); got != ports["http"] {
		t.Errorf("config.DefaultListen is %s but the manifests and example config use port %d: change both together", config.DefaultListen, ports["http"])
	}
	for dir, r := range mustRender(t) {
		for _, d := range typed[*appsv1.Deployment](r) {
			if c, _ := ghbrokerContainer(d); c != nil {
				if cp, ok := resolvePort(c, intstr.FromString("http")); !ok || cp.ContainerPort != portOf(t, config.DefaultListen) {
					t.Errorf("deploy/%s: %s: the http port is not the binary's default listen %s", dir, d.Name, config.DefaultListen)
				}
			}
		}
	}
}

func TestDeploymentsAgreeWithTheConfig(t *testing.T) {
	secretKeys := secretTemplateKeys(t)
	for dir, r := range mustRender(t) {
		cfg, rawConfig := configFor(t, dir)
		ports := configPorts(t, cfg)
		wantSecretEnv := []string{config.SecretEnv}
		for _, c := range cfg.Clients {
			if c.SecretEnv != "" {
				wantSecretEnv = append(wantSecretEnv, c.SecretEnv)
			}
		}
		images := map[string]bool{}
		for _, d := range typed[*appsv1.Deployment](r) {
			c, cmd := ghbrokerContainer(d)
			if c == nil {
				t.Errorf("deploy/%s: Deployment %s runs no ghbroker container", dir, d.Name)
				continue
			}
			where := fmt.Sprintf("deploy/%s: Deployment %s", dir, d.Name)
			pod := &d.Spec.Template.Spec
			images[c.Image] = true
			if !strings.Contains(c.Image, "/") || !strings.Contains(c.Image, ":") {
				t.Errorf("%s: image %q needs a registry and a tag", where, c.Image)
			}

			// Ports: exactly the config's listeners, by name.
			got := map[string]int32{}
			for _, p := range c.Ports {
				got[p.Name] = p.ContainerPort
				if p.Protocol != corev1.ProtocolTCP {
					t.Errorf("%s: port %s is not TCP", where, p.Name)
				}
			}
			want := ports
			if cmd != "serve" {
				// revocations.listen is the broker's: a replica follows it.
				want = maps.Clone(ports)
				delete(want, "revocations")
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: container ports %v, but the config listens on %v", where, got, want)
			}

			// Probes on the main listener.
			for _, p := range []struct {
				probe *corev1.Probe
				path  string
			}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, "/readyz"}} {
				if p.probe == nil || p.probe.HTTPGet == nil {
					t.Errorf("%s: no HTTP probe for %s", where, p.path)
					continue
				}
				if p.probe.HTTPGet.Path != p.path {
					t.Errorf("%s: probe path %s, want %s", where, p.probe.HTTPGet.Path, p.path)
				}
				if cp, ok := resolvePort(c, p.probe.HTTPGet.Port); !ok || cp.ContainerPort != ports["http"] {
					t.Errorf("%s: probe %s is not on the main listener (port %d)", where, p.path, ports["http"])
				}
			}

			// Prometheus scrapes metrics.listen, and only that port.
			ann := d.Spec.Template.Annotations
			if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != fmt.Sprint(ports["metrics"]) {
				t.Errorf("%s: prometheus.io annotations %v, want /metrics scraped on metrics.listen (port %d)", where, ann, ports["metrics"])
			}

			// The config: --config names a file in a mounted ConfigMap
			// whose content is deploy/base/config.yaml.
			if got := flagValue(c.Args, "--config"); got != configMountPath {
				t.Errorf("%s: --config %q, want %s", where, got, configMountPath)
			}
			checkConfigMount(t, where, r, d, c, rawConfig)

			// Hardening.
			checkHardening(t, where, pod, c)

			switch cmd {
			case "serve":
				if cfg.Storage.Etcd != nil {
					checkEtcdBroker(t, where, r, d, c, cfg)
				} else {
					if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
						t.Errorf("%s: the broker must run exactly one replica (bbolt allows one writer)", where)
					}
					if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
						t.Errorf("%s: strategy %q: the broker needs Recreate, so that two pods never hold the store", where, d.Spec.Strategy.Type)
					}
					checkStoreVolume(t, where, r, d, c, cfg)
				}
				for _, name := range wantSecretEnv {
					ref := envSecretRef(c, name)
					switch {
					case ref == nil:
						t.Errorf("%s: env %s does not come from a Secret", where, name)
					case ref.Name != secretName || !secretKeys[ref.Key]:
						t.Errorf("%s: env %s reads %s/%s, which base/secret.example.yaml does not document", where, name, ref.Name, ref.Key)
					}
				}
			case "authz":
				if got := flagValue(c.Args, "--issuer"); got != cfg.Issuer {
					t.Errorf("%s: --issuer %q, but the config's issuer is %s", where, got, cfg.Issuer)
				}
				for _, v := range pod.Volumes {
					if v.PersistentVolumeClaim != nil || v.Secret != nil {
						t.Errorf("%s: the stateless replica mounts volume %s", where, v.Name)
					}
				}
				for _, e := range c.Env {
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						t.Errorf("%s: the stateless replica reads secret %s", where, e.Name)
					}
				}
			default:
				t.Errorf("%s: unknown ghbroker command %q", where, cmd)
			}
		}
		if len(images) > 1 {
			t.Errorf("deploy/%s: the broker and the replicas run different images %v; one `images:` entry must move them together", dir, images)
		}
	}
}

func envSecretRef(c *corev1.Container, name string) *corev1.SecretKeySelector {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil {
			return e.ValueFrom.SecretKeyRef
		}
	}
	return nil
}

func checkConfigMount(t *testing.T, where string, r *rendered, d *appsv1.Deployment, c *corev1.Container, rawConfig []byte) {
	t.Helper()
	dir, file := path.Split(configMountPath)
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) != path.Clean(dir) {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("%s: the config volume is not read-only", where)
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.ConfigMap == nil {
				t.Errorf("%s: %s is not a ConfigMap volume", where, dir)
				return
			}
			for _, cm := range typed[*corev1.ConfigMap](r) {
				if cm.Name == v.ConfigMap.Name && cm.Namespace == d.Namespace {
					if cm.Data[file] != string(rawConfig) {
						t.Errorf("%s: ConfigMap %s's %s is not deploy/%s", where, cm.Name, file, baseConfigPath)
					}
					return
				}
			}
			t.Errorf("%s: mounts ConfigMap %s, which is not in the output", where, v.ConfigMap.Name)
			return
		}
	}
	t.Errorf("%s: nothing is mounted at %s", where, dir)
}

func checkStoreVolume(t *testing.T, where string, r *rendered, d *appsv1.Deployment, c *corev1.Container, cfg *config.Config) {
	t.Helper()
	dir := path.Dir(cfg.Storage.Bolt.Path)
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) != dir {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.PersistentVolumeClaim == nil {
				t.Errorf("%s: the store directory %s is not a PersistentVolumeClaim", where, dir)
				return
			}
			for _, pvc := range typed[*corev1.PersistentVolumeClaim](r) {
				if pvc.Name == v.PersistentVolumeClaim.ClaimName && pvc.Namespace == d.Namespace {
					if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
						t.Errorf("%s: PVC %s must be ReadWriteOnce", where, pvc.Name)
					}
					return
				}
			}
			t.Errorf("%s: PVC %s is not in the output", where, v.PersistentVolumeClaim.ClaimName)
			return
		}
	}
	t.Errorf("%s: nothing is mounted at the store directory %s (storage.bolt.path %s)", where, dir, cfg.Storage.Bolt.Path)
}

func checkHardening(t *testing.T, where string, pod *corev1.PodSpec, c *corev1.Container) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil ||
		psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: the pod needs runAsNonRoot and seccompProfile RuntimeDefault", where)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: the pod mounts a service account token it never uses", where)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("%s: the container has no securityContext", where)
	default:
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not set", where)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", where)
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities must drop ALL and add none", where)
		}
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("%s: no %s request", where, res)
		}
		if _, ok := c.Resources.Limits[res]; !ok {
			t.Errorf("%s: no %s limit", where, res)
		}
	}
}
