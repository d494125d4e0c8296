//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestOpenIDClient runs openid-client (npm, v6: an OpenID-certified relying
// party) against the built binary: discovery, code + PKCE + nonce, ID-token
// validation by the library, userinfo, refresh (and reuse detection),
// revocation, RP-initiated logout.
func TestOpenIDClient(t *testing.T) {
	if _, err := os.Stat("node/node_modules/openid-client"); err != nil {
		t.Fatal("openid-client is not installed: run `make test` (it runs npm ci in e2e/node)")
	}
	port := freePort(t)
	start(t, "ghbroker dev is running", "dev", "--port", fmt.Sprint(port), "--auto-login", "alice")
	issuer := fmt.Sprintf("http://ghbroker.localhost:%d", port)
	cmd := exec.Command("node", "rp.mjs", issuer, "grafana", "grafana-dev-secret-not-for-production",
		"http://localhost:3000/login/generic_oauth", "http://localhost:3000/login")
	cmd.Dir = "node"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openid-client RP failed: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("RP output: %s", out)
	}
	if res["sub"] != "1001" || res["login"] != "alice" || res["logout"] != true || res["reuse"] != "invalid_grant" {
		t.Errorf("RP results %v", res)
	}
	t.Logf("openid-client: %v", res)
}
