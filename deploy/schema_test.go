package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// crdSchemas compiles the openAPIV3Schema of every version of every CRD in
// testdata/schemas, keyed by "group/version/Kind".
var crdSchemas = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	files, err := filepath.Glob(filepath.Join(schemaDir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRD schemas in %s", schemaDir)
	}
	out := map[string]*jsonschema.Schema{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var crd struct {
			Kind string `json:"kind"`
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Schema struct {
						OpenAPIV3Schema json.RawMessage `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		j, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if err := json.Unmarshal(j, &crd); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			key := crd.Spec.Group + "/" + v.Name + "/" + crd.Spec.Names.Kind
			sch, err := compileOpenAPISchema(key, v.Schema.OpenAPIV3Schema)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", f, key, err)
			}
			out[key] = sch
		}
	}
	return out, nil
})

// compileOpenAPISchema compiles a CRD's openAPIV3Schema as a draft-04 JSON
// schema after translating what JSON Schema does not know:
//
//   - nullable: true admits null;
//   - an object schema with properties and neither additionalProperties nor
//     x-kubernetes-preserve-unknown-fields refuses unknown fields. The API
//     server would silently prune them; a validator that refuses them is
//     what `kubectl apply --validate=strict` does, and what catches a
//     misspelt key in an example;
//   - the other x-kubernetes-* extensions are dropped.
func compileOpenAPISchema(name string, raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	doc = structural(doc)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	url := "file:///crd/" + strings.ReplaceAll(name, "/", "_") + ".json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// structural rewrites one schema node (see compileOpenAPISchema).
func structural(v any) any {
	switch n := v.(type) {
	case []any:
		for i := range n {
			n[i] = structural(n[i])
		}
		return n
	case map[string]any:
		out := make(map[string]any, len(n))
		for k, val := range n {
			switch k {
			case "properties", "patternProperties", "definitions":
				// Keys here are names, not keywords.
				props := map[string]any{}
				for pk, pv := range val.(map[string]any) {
					props[pk] = structural(pv)
				}
				out[k] = props
			case "enum", "default", "example", "required":
				out[k] = val // data, not schemas
			default:
				if strings.HasPrefix(k, "x-kubernetes-") || k == "nullable" {
					continue
				}
				out[k] = structural(val)
			}
		}
		if n["nullable"] == true {
			if t, ok := out["type"].(string); ok {
				out["type"] = []any{t, "null"}
			}
		}
		_, hasProps := n["properties"]
		_, hasAdditional := n["additionalProperties"]
		if hasProps && !hasAdditional && n["x-kubernetes-preserve-unknown-fields"] != true {
			out["additionalProperties"] = false
		}
		return out
	}
	return v
}

// validateCR validates a custom resource against the CRD schema of its
// apiVersion.
func validateCR(o *object) error {
	schemas, err := crdSchemas()
	if err != nil {
		return err
	}
	group, version, _ := strings.Cut(o.APIVersion, "/")
	sch := schemas[group+"/"+version+"/"+o.Kind]
	if sch == nil {
		return fmt.Errorf("%s: no CRD schema for %s %s in %s", o, o.APIVersion, o.Kind, schemaDir)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(o.JSON))
	if err != nil {
		return err
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%s: %v", o, err)
	}
	return nil
}

func TestCustomResourcesMatchCRDSchemas(t *testing.T) {
	if _, err := crdSchemas(); err != nil {
		t.Fatal(err)
	}
	count := 0
	for dir, r := range mustRender(t) {
		for _, o := range r.Objects {
			if o.Typed != nil {
				continue
			}
			count++
			if o.group() == "getambassador.io" && o.APIVersion != "getambassador.io/v3alpha1" {
				t.Errorf("deploy/%s: %s: use getambassador.io/v3alpha1 (v1 and v2 accept any spec)", dir, o)
			}
			if err := validateCR(o); err != nil {
				t.Error(err)
			}
		}
	}
	if count == 0 {
		t.Fatal("no custom resource was validated")
	}
}

// TestCRDValidationRefusesMistakes proves the schema validation is not
// vacuous.
func TestCRDValidationRefusesMistakes(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown spec field": "apiVersion: getambassador.io/v3alpha1\nkind: AuthService\nmetadata: {name: x}\nspec: {auth_service: a:1, path_prefx: /authz}\n",
		"bad enum":           "apiVersion: getambassador.io/v3alpha1\nkind: AuthService\nmetadata: {name: x}\nspec: {auth_service: a:1, proto: tcp}\n",
		"missing required":   "apiVersion: getambassador.io/v3alpha1\nkind: Mapping\nmetadata: {name: x}\nspec: {prefix: /}\n",
		"wrong type":         "apiVersion: getambassador.io/v3alpha1\nkind: Mapping\nmetadata: {name: x}\nspec: {prefix: /, service: s, bypass_auth: \"yes\"}\n",
		"nested unknown":     "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: x}\nspec: {secretName: s, issuerRef: {name: i, kindd: ClusterIssuer}}\n",
		"no schema":          "apiVersion: getambassador.io/v9\nkind: Mapping\nmetadata: {name: x}\nspec: {}\n",
	} {
		o, err := decodeObject("test", []byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := validateCR(o); err == nil {
			t.Errorf("%s: validated without an error", name)
		}
	}
}
