package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The kustomizations the issue promises. Every kustomization found under
// deploy/ is rendered; these must be among them.
var requiredKustomizations = []string{
	"base",
	"authz-replicas",
	"ambassador",
	"ambassador/routes",
	"ambassador/http",
	"ambassador/http-replicas",
	"ambassador/legacy",
	"cert-manager",
	"ha",
}

// builtinKinds maps apiVersion/kind to a typed k8s.io/api object that the
// manifests of that kind must decode into strictly.
var builtinKinds = map[string]func() any{
	"v1/Pod":                                 func() any { return &corev1.Pod{} },
	"v1/Namespace":                           func() any { return &corev1.Namespace{} },
	"v1/ServiceAccount":                      func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                              func() any { return &corev1.Secret{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"v1/PersistentVolumeClaim":               func() any { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                    func() any { return &appsv1.StatefulSet{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return &networkingv1.NetworkPolicy{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"rbac.authorization.k8s.io/v1/ClusterRoleBinding": func() any { return &rbacv1.ClusterRoleBinding{} },
}

// crdGroups are the API groups validated against the CRD schemas in
// testdata/schemas.
var crdGroups = []string{"getambassador.io", "cert-manager.io"}

// object is one manifest document.
type object struct {
	// Source is the kustomization directory or file it came from.
	Source                            string
	APIVersion, Kind, Name, Namespace string
	// JSON is the document as JSON.
	JSON []byte
	// Typed is the strictly decoded k8s.io/api object of a built-in kind,
	// nil for custom resources.
	Typed any
	// Raw is the document as generic JSON values.
	Raw map[string]any
}

func (o *object) String() string {
	return fmt.Sprintf("%s: %s/%s %s/%s", o.Source, o.APIVersion, o.Kind, o.Namespace, o.Name)
}

func (o *object) group() string {
	g, _, ok := strings.Cut(o.APIVersion, "/")
	if !ok {
		return ""
	}
	return g
}

// spec returns the object's spec as generic values.
func (o *object) spec() map[string]any {
	s, _ := o.Raw["spec"].(map[string]any)
	return s
}

// rendered is the output of one kustomization.
type rendered struct {
	Dir     string
	Objects []*object
}

// repoRoot is the repository root: tests run in deploy/.
const repoRoot = ".."

// schemaDir holds the upstream CRDs the custom resources are validated
// against; its README.md names each file's source and version.
const schemaDir = "testdata/schemas"

// findKustomizations lists every directory under deploy/ holding a
// kustomization, relative to deploy/.
func findKustomizations() ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch d.Name() {
		case "kustomization.yaml", "kustomization.yml", "Kustomization":
			dirs = append(dirs, filepath.ToSlash(filepath.Dir(path)))
		}
		return nil
	})
	sort.Strings(dirs)
	return dirs, err
}

// renderAll renders every kustomization once per test binary.
var renderAll = sync.OnceValues(func() (map[string]*rendered, error) {
	dirs, err := findKustomizations()
	if err != nil {
		return nil, err
	}
	out := map[string]*rendered{}
	var errs []error
	for _, dir := range dirs {
		r, err := render(dir)
		if err != nil {
			errs = append(errs, err)
		}
		if r != nil {
			out[dir] = r
		}
	}
	return out, errors.Join(errs...)
})

// render runs kustomize (krusty, as `kustomize build`) on dir and decodes
// every object strictly.
func render(dir string) (*rendered, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	r := &rendered{Dir: dir}
	var errs []error
	for _, res := range m.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", dir, res.CurId(), err)
		}
		o, err := decodeObject(dir, y)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.Objects = append(r.Objects, o)
	}
	return r, errors.Join(errs...)
}

// decodeObject decodes one YAML document. A built-in kind is decoded into
// its k8s.io/api type, case-sensitively, refusing unknown and duplicate
// fields (as `kubectl apply --validate=strict`); a custom resource of a
// group in crdGroups is kept generic for schema validation; any other kind
// is an error, so that a new kind cannot slip in unchecked.
func decodeObject(source string, y []byte) (*object, error) {
	j, err := yaml.YAMLToJSONStrict(y)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var raw map[string]any
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(j, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	o := &object{Source: source, JSON: j, Raw: raw}
	o.APIVersion, _ = raw["apiVersion"].(string)
	o.Kind, _ = raw["kind"].(string)
	if md, ok := raw["metadata"].(map[string]any); ok {
		o.Name, _ = md["name"].(string)
		o.Namespace, _ = md["namespace"].(string)
	}
	if o.APIVersion == "" || o.Kind == "" || o.Name == "" {
		return nil, fmt.Errorf("%s: a document without apiVersion, kind or metadata.name", source)
	}
	if mk, ok := builtinKinds[o.APIVersion+"/"+o.Kind]; ok {
		v := mk()
		strict, err := sigsjson.UnmarshalStrict(j, v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o, err)
		}
		if len(strict) > 0 {
			return nil, fmt.Errorf("%s: %w", o, errors.Join(strict...))
		}
		o.Typed = v
		return o, nil
	}
	if slices.Contains(crdGroups, o.group()) {
		return o, nil
	}
	return nil, fmt.Errorf("%s: no strict decoder for %s %s: add it to builtinKinds", source, o.APIVersion, o.Kind)
}

// decodeFile decodes every document of a manifest file that is not part of
// a kustomization.
func decodeFile(t *testing.T, path string) []*object {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*object
	for _, doc := range splitYAML(raw) {
		o, err := decodeObject(path, doc)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// splitYAML splits a multi-document YAML stream at "---" lines, dropping
// documents that hold only comments.
func splitYAML(raw []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if hasContent(cur.Bytes()) {
			docs = append(docs, bytes.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	for _, line := range strings.SplitAfter(string(raw), "\n") {
		if strings.TrimRight(line, " \r\n") == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
	}
	flush()
	return docs
}

func hasContent(doc []byte) bool {
	for _, l := range strings.Split(string(doc), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}

// mustRender returns the rendered kustomizations. A kustomization that
// does not build, or an object that does not decode, fails the test; the
// objects that did decode are still returned so that every other check
// runs.
func mustRender(t *testing.T) map[string]*rendered {
	t.Helper()
	all, err := renderAll()
	if err != nil {
		t.Error(err)
	}
	return all
}

// typed returns the objects of r whose typed value is a T.
func typed[T any](r *rendered) []T {
	var out []T
	for _, o := range r.Objects {
		if v, ok := o.Typed.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// custom returns r's custom resources of one kind.
func custom(r *rendered, group, kind string) []*object {
	var out []*object
	for _, o := range r.Objects {
		if o.group() == group && o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func TestEveryKustomizationRenders(t *testing.T) {
	dirs, err := findKustomizations()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range requiredKustomizations {
		if !slices.Contains(dirs, want) {
			t.Errorf("deploy/%s has no kustomization.yaml", want)
		}
	}
	all := mustRender(t)
	for _, dir := range dirs {
		r := all[dir]
		if r == nil || len(r.Objects) == 0 {
			t.Errorf("deploy/%s renders no objects", dir)
			continue
		}
		seen := map[string]bool{}
		for _, o := range r.Objects {
			id := o.APIVersion + "/" + o.Kind + "/" + o.Namespace + "/" + o.Name
			if seen[id] {
				t.Errorf("deploy/%s renders %s twice", dir, o)
			}
			seen[id] = true
		}
	}
}

func TestNamespacedObjectsHaveANamespace(t *testing.T) {
	clusterScoped := map[string]bool{"Namespace": true, "ClusterIssuer": true, "ClusterRoleBinding": true}
	for dir, r := range mustRender(t) {
		for _, o := range r.Objects {
			if clusterScoped[o.Kind] != (o.Namespace == "") {
				t.Errorf("deploy/%s: %s: namespace %q is wrong for its scope", dir, o, o.Namespace)
			}
		}
	}
}

// TestStrictDecodingRefusesMistakes proves the decoder is not vacuous: a
// misspelt or wrongly cased field, a duplicate key and an unknown kind are
// refused.
func TestStrictDecodingRefusesMistakes(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 1\n",
		"wrong case":    "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: [{Port: 80}]\n",
		"duplicate key": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n",
		"wrong type":    "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: [{port: eighty}]\n",
		"unknown kind":  "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n",
	} {
		if _, err := decodeObject("test", []byte(doc)); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}

// TestLooseManifestsDecodeStrictly covers manifests that no kustomization
// includes: the Secret template, the RBAC example and the store access pod.
func TestLooseManifestsDecodeStrictly(t *testing.T) {
	for _, path := range []string{"base/secret.example.yaml", "kubernetes-oidc/rbac.yaml", "operations/store-access-pod.yaml"} {
		if objs := decodeFile(t, path); len(objs) == 0 {
			t.Errorf("%s holds no object", path)
		}
	}
	for dir, r := range mustRender(t) {
		for _, s := range typed[*corev1.Secret](r) {
			t.Errorf("deploy/%s renders Secret %s: secrets never live in the repository", dir, s.Name)
		}
	}
}
