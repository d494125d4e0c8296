package config

import (
	"slices"
	"strings"
	"testing"
)

// TestClientGrantTypes: clients[].grant_types opts a client in to the
// device flow; a device-only client needs no redirect URIs.
func TestClientGrantTypes(t *testing.T) {
	src := minimal + "clients:\n" +
		"  - {id: cli, public: true, grant_types: [device_code, refresh_token]}\n" +
		"  - {id: kube, secret: s0123456789abcdef0123456789abcdef, grant_types: [\"urn:ietf:params:oauth:grant-type:device_code\"]}\n" +
		"  - {id: g, secret: s0123456789abcdef0123456789abcdef, redirect_uris: [https://g.example.com/cb]}\n"
	c, err := Parse("ok.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Clients[0].GrantTypes; !slices.Equal(got, []string{"device_code", "refresh_token"}) {
		t.Errorf("cli grant_types = %v", got)
	}
	if got := c.Clients[1].GrantTypes; !slices.Equal(got, []string{"device_code"}) {
		t.Errorf("kube grant_types = %v, want the URN read as device_code", got)
	}
	for _, tt := range []struct{ name, clients, want string }{
		{"unknown grant", "  - {id: x, secret: s0123456789abcdef0123456789abcdef, grant_types: [password]}\n", `unknown grant type "password"`},
		{"refresh alone", "  - {id: x, secret: s0123456789abcdef0123456789abcdef, grant_types: [refresh_token]}\n", "refresh_token alone grants nothing"},
		{"code flow without redirect", "  - {id: x, secret: s0123456789abcdef0123456789abcdef, grant_types: [authorization_code, device_code]}\n", "needs at least one redirect_uris"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(minimal+"clients:\n"+tt.clients), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}
