package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/ghbroker/ghbroker/internal/config"
)

// Checks of deploy/ha: broker replicas on an etcd StatefulSet of the same
// output, with cert-manager TLS (docs/ha.md).

// etcdTLSDir is where deploy/ha mounts the broker's etcd client
// certificate; configFor points it at test certificates to parse the
// config here.
const etcdTLSDir = "/etc/ghbroker-etcd/"

// configFor returns the config file a kustomization ships: its own
// config.yaml (deploy/ha), else deploy/base's. A config naming etcd TLS
// files is checked against generated files of the same names; the paths
// in the result are the config's own.
func configFor(t *testing.T, dir string) (*config.Config, []byte) {
	t.Helper()
	p := path.Join(dir, "config.yaml")
	raw, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return loadConfig(t)
	}
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	tmp := ""
	if strings.Contains(text, etcdTLSDir) {
		tmp = t.TempDir() + "/"
		writeTestTLS(t, tmp)
		text = strings.ReplaceAll(text, etcdTLSDir, tmp)
	}
	cfg, err := config.Parse(p, []byte(text), testEnv)
	if err != nil {
		t.Fatalf("deploy/%s does not pass check-config:\n%v", p, err)
	}
	if e := cfg.Storage.Etcd; e != nil && tmp != "" {
		for _, f := range []*string{&e.TLS.CAFile, &e.TLS.CertFile, &e.TLS.KeyFile} {
			*f = strings.Replace(*f, tmp, etcdTLSDir, 1)
		}
	}
	return cfg, raw
}

// writeTestTLS writes ca.crt, tls.crt and tls.key, as cert-manager's
// Secrets hold them, into dir.
func writeTestTLS(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, data := range map[string][]byte{
		"ca.crt": cert, "tls.crt": cert,
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(dir+name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// checkEtcdBroker checks a broker Deployment whose config names etcd:
// several replicas that may overlap, spread over nodes, no bbolt volume,
// the etcd TLS files inside a mounted Secret.
func checkEtcdBroker(t *testing.T, where string, r *rendered, d *appsv1.Deployment, c *corev1.Container, cfg *config.Config) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 3 {
		t.Errorf("%s: a broker on etcd runs at least 3 replicas", where)
	}
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate == nil ||
		d.Spec.Strategy.RollingUpdate.MaxUnavailable == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("%s: replicas on etcd roll with maxUnavailable 0", where)
	}
	pod := &d.Spec.Template.Spec
	if !slices.ContainsFunc(pod.TopologySpreadConstraints, func(c corev1.TopologySpreadConstraint) bool {
		return c.TopologyKey == "kubernetes.io/hostname" && c.WhenUnsatisfiable == corev1.DoNotSchedule
	}) {
		t.Errorf("%s: the replicas are not spread over nodes", where)
	}
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim != nil {
			t.Errorf("%s: a broker on etcd mounts the volume %s", where, v.Name)
		}
	}
	if len(typed[*corev1.PersistentVolumeClaim](r)) > 0 {
		t.Errorf("%s: the output still holds the bbolt PersistentVolumeClaim", where)
	}
	tls := cfg.Storage.Etcd.TLS
	for _, f := range []string{tls.CAFile, tls.CertFile, tls.KeyFile} {
		if secretMountedAt(d, c, f) == "" {
			t.Errorf("%s: storage.etcd.tls file %s is not in a mounted Secret", where, f)
		}
	}
	for _, pdb := range typed[*policyv1.PodDisruptionBudget](r) {
		if pdb.Name == d.Name && (pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 2) {
			t.Errorf("%s: PodDisruptionBudget %s must keep at least 2 replicas", where, pdb.Name)
		}
	}
}

// secretMountedAt returns the Secret whose volume c mounts at file's
// directory, or "".
func secretMountedAt(d *appsv1.Deployment, c *corev1.Container, file string) string {
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) != path.Dir(file) {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				return v.Secret.SecretName
			}
		}
	}
	return ""
}

// TestHAOverlay: deploy/ha's broker config names the members of the etcd
// StatefulSet of the same output through its headless Service, the
// members' certificate covers those names, the broker's client certificate
// is the Secret it mounts, etcd keeps quorum through a drain, and its
// image is pinned.
func TestHAOverlay(t *testing.T) {
	r := mustRender(t)["ha"]
	if r == nil {
		t.Fatal("deploy/ha does not render")
	}
	cfg, _ := configFor(t, "ha")
	e := cfg.Storage.Etcd
	if e == nil {
		t.Fatal("deploy/ha/config.yaml does not name etcd")
	}
	sets := typed[*appsv1.StatefulSet](r)
	if len(sets) != 1 {
		t.Fatalf("deploy/ha renders %d StatefulSets, want the etcd one", len(sets))
	}
	sts := sets[0]
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Errorf("etcd runs %v members, want 3", sts.Spec.Replicas)
	}
	c := sts.Spec.Template.Spec.Containers[0]
	if _, tag, ok := strings.Cut(c.Image, ":"); !ok || tag == "latest" || !strings.HasPrefix(c.Image, "gcr.io/etcd-development/etcd:v3.") {
		t.Errorf("etcd image %q: want the official image at a pinned v3 tag", c.Image)
	}
	checkHardening(t, "deploy/ha: StatefulSet etcd", &sts.Spec.Template.Spec, &c)

	// Endpoints: https, one per member, by the headless Service's names.
	var want []string
	for i := range 3 {
		want = append(want, fmt.Sprintf("%s-%d.%s.%s.svc", sts.Name, i, sts.Spec.ServiceName, sts.Namespace))
	}
	var hosts []string
	for _, ep := range e.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != "https" || u.Port() != "2379" {
			t.Errorf("endpoint %s: want https on the client port 2379", ep)
			continue
		}
		hosts = append(hosts, u.Hostname())
	}
	if !slices.Equal(hosts, want) {
		t.Errorf("storage.etcd.endpoints name %v, want the members %v", hosts, want)
	}
	var headless *corev1.Service
	for _, svc := range typed[*corev1.Service](r) {
		if svc.Name == sts.Spec.ServiceName {
			headless = svc
		}
	}
	if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s must be headless and publish not-ready addresses (bootstrap)", sts.Spec.ServiceName)
	}
	for i, h := range want {
		if arg := fmt.Sprintf("%s-%d=https://%s:2380", sts.Name, i, h); !strings.Contains(strings.Join(c.Args, " "), arg) {
			t.Errorf("etcd's --initial-cluster lacks %s", arg)
		}
	}

	// Certificates: the members' covers every endpoint; the broker mounts
	// a client certificate; both from one CA issuer.
	certs := map[string]map[string]any{} // secretName → spec
	for _, o := range custom(r, "cert-manager.io", "Certificate") {
		spec := o.spec()
		certs[spec["secretName"].(string)] = spec
	}
	memberSecret := ""
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			memberSecret = v.Secret.SecretName
		}
	}
	member, ok := certs[memberSecret]
	if !ok {
		t.Fatalf("etcd mounts Secret %q, which no Certificate issues", memberSecret)
	}
	for _, h := range want {
		if !slices.Contains(toStrings(member["dnsNames"]), h) {
			t.Errorf("the members' certificate does not cover %s", h)
		}
	}
	var broker *appsv1.Deployment
	for _, d := range typed[*appsv1.Deployment](r) {
		if _, cmd := ghbrokerContainer(d); cmd == "serve" {
			broker = d
		}
	}
	bc, _ := ghbrokerContainer(broker)
	client, ok := certs[secretMountedAt(broker, bc, e.TLS.CertFile)]
	if !ok || !slices.Contains(toStrings(client["usages"]), "client auth") {
		t.Errorf("the broker's etcd client certificate is not a cert-manager Certificate for client auth")
	}
	issuer := func(spec map[string]any) string { return spec["issuerRef"].(map[string]any)["name"].(string) }
	if issuer(member) != issuer(client) {
		t.Errorf("the members' and the broker's certificates come from different issuers (%s, %s)", issuer(member), issuer(client))
	}
	for _, pdb := range typed[*policyv1.PodDisruptionBudget](r) {
		if pdb.Name == sts.Name && (pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1) {
			t.Errorf("etcd's PodDisruptionBudget must allow one member down at a time (quorum 2 of 3)")
		}
	}
}

// toStrings returns a generic JSON list as strings.
func toStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
