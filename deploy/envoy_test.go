package deploy

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

const envoyConfigPath = "envoy/envoy.yaml"

// validateProto runs the protoc-gen-validate rules of m and of every
// message packed in an Any inside it (PGV does not look into Anys).
func validateProto(m proto.Message) error {
	var errs []error
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, err)
		}
	}
	var walk func(protoreflect.Message)
	walk = func(msg protoreflect.Message) {
		if a, ok := msg.Interface().(*anypb.Any); ok {
			inner, err := a.UnmarshalNew()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", a.GetTypeUrl(), err))
				return
			}
			if err := validateProto(inner); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", a.GetTypeUrl(), err))
			}
			return
		}
		msg.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := range v.List().Len() {
					walk(v.List().Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message())
					return true
				})
			case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
				walk(v.Message())
			}
			return true
		})
	}
	walk(m.ProtoReflect())
	return errors.Join(errs...)
}

// TestEnvoyConfigIsValid decodes deploy/envoy/envoy.yaml strictly into
// Envoy's Bootstrap message (go-control-plane, unknown fields refused,
// every typed_config resolved) and runs Envoy's validation rules on it.
func TestEnvoyConfigIsValid(t *testing.T) {
	raw, err := os.ReadFile(envoyConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		t.Fatal(err)
	}
	var b bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{}).Unmarshal(j, &b); err != nil {
		t.Fatalf("%s is not a valid Envoy bootstrap: %v", envoyConfigPath, err)
	}
	if err := validateProto(&b); err != nil {
		t.Fatalf("%s: %v", envoyConfigPath, err)
	}
}

// TestEnvoyConfigAgreesWithTheBroker follows the ext_authz filter to the
// authz replicas' gRPC port and checks the per-route settings.
func TestEnvoyConfigAgreesWithTheBroker(t *testing.T) {
	cfg, _ := loadConfig(t)
	ports := configPorts(t, cfg)
	r := mustRender(t)["authz-replicas"]
	raw, err := os.ReadFile(envoyConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	sr := doc["static_resources"].(map[string]any)

	clusters := map[string]string{} // name -> host:port
	for _, c := range sr["clusters"].([]any) {
		cm := c.(map[string]any)
		la := cm["load_assignment"].(map[string]any)
		ep := la["endpoints"].([]any)[0].(map[string]any)["lb_endpoints"].([]any)[0].(map[string]any)
		sa := ep["endpoint"].(map[string]any)["address"].(map[string]any)["socket_address"].(map[string]any)
		clusters[str(cm, "name")] = fmt.Sprintf("%s:%v", sa["address"], sa["port_value"])
		if str(cm, "name") != str(la, "cluster_name") {
			t.Errorf("cluster %s: load_assignment names %s", cm["name"], la["cluster_name"])
		}
	}

	hcm := sr["listeners"].([]any)[0].(map[string]any)["filter_chains"].([]any)[0].(map[string]any)["filters"].([]any)[0].(map[string]any)["typed_config"].(map[string]any)
	var filterNames []string
	for _, f := range hcm["http_filters"].([]any) {
		fm := f.(map[string]any)
		filterNames = append(filterNames, str(fm, "name"))
		if str(fm, "name") != "envoy.filters.http.ext_authz" {
			continue
		}
		tc := fm["typed_config"].(map[string]any)
		if str(tc, "transport_api_version") != "V3" {
			t.Error("ext_authz: transport_api_version must be V3")
		}
		if tc["failure_mode_allow"] == true {
			t.Error("ext_authz: failure_mode_allow lets everyone in when the broker is down")
		}
		gs := tc["grpc_service"].(map[string]any)
		cluster := str(gs["envoy_grpc"].(map[string]any), "cluster_name")
		be, _, err := resolveAddress(r, clusters[cluster])
		switch {
		case err != nil:
			t.Errorf("ext_authz cluster %s: %v", cluster, err)
		case be.Port.ContainerPort != ports["grpc"] || be.Command != "authz":
			t.Errorf("ext_authz cluster %s reaches %s port %d, not the authz replicas' authz.grpc_listen %d", cluster, be.Command, be.Port.ContainerPort, ports["grpc"])
		}
	}
	if !slices.Equal(filterNames, []string{"envoy.filters.http.ext_authz", "envoy.filters.http.router"}) {
		t.Errorf("http_filters %v: ext_authz must come before the router", filterNames)
	}

	authHost := issuerHost(t, cfg)
	sawBroker := false
	for _, vh := range hcm["route_config"].(map[string]any)["virtual_hosts"].([]any) {
		vhm := vh.(map[string]any)
		domains := strList(vhm, "domains")
		if !slices.Contains(domains, authHost) {
			continue
		}
		sawBroker = true
		pfc, _ := vhm["typed_per_filter_config"].(map[string]any)
		ea, _ := pfc["envoy.filters.http.ext_authz"].(map[string]any)
		if ea["disabled"] != true {
			t.Errorf("virtual host %s: the broker's own host must disable ext_authz, or signing in would loop", vhm["name"])
		}
		for _, rt := range vhm["routes"].([]any) {
			rtm := rt.(map[string]any)
			prefix := str(rtm["match"].(map[string]any), "prefix")
			route, ok := rtm["route"].(map[string]any)
			switch {
			case prefix == "/metrics":
				if ok {
					t.Errorf("virtual host %s makes /metrics public", vhm["name"])
				}
			case ok:
				be, _, err := resolveAddress(r, clusters[str(route, "cluster")])
				if err != nil || be.Command != "serve" || be.Port.ContainerPort != ports["http"] {
					t.Errorf("virtual host %s route %s does not reach the broker's main listener: %v", vhm["name"], prefix, err)
				}
			}
		}
	}
	if !sawBroker {
		t.Errorf("no virtual host for the broker's host %s", authHost)
	}
}
