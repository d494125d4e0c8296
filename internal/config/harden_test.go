package config

import (
	"strings"
	"testing"
)

// TestClientGatewayAccess: clients[].gateway_access opts a client's access
// tokens in as gateway credentials; no client may take the id that is the
// gateway audience.
func TestClientGatewayAccess(t *testing.T) {
	c, err := Parse("ok.yaml", []byte(minimal+"clients:\n"+
		"  - {id: cli, public: true, grant_types: [device_code], gateway_access: true}\n"+
		"  - {id: g, secret: s, redirect_uris: [https://g.example.com/cb]}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Clients[0].GatewayAccess || c.Clients[1].GatewayAccess {
		t.Errorf("gateway_access = %v, %v; want true, false", c.Clients[0].GatewayAccess, c.Clients[1].GatewayAccess)
	}
	_, err = Parse("bad.yaml", []byte(minimal+"clients:\n  - {id: \"https://auth.example.com/gateway\", secret: s, redirect_uris: [https://g.example.com/cb]}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "marks gateway credentials") {
		t.Errorf("err = %v, want the gateway audience refused as a client id", err)
	}
}
