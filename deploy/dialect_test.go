package deploy

import (
	"strings"
	"testing"

	"github.com/ghbroker/ghbroker/authz"
	"github.com/ghbroker/ghbroker/internal/config"
)

// doorDialect is the dialect of the check a gateway reaches at backend be
// and path rest: authz.dialect on authz.listen, Envoy's on the gRPC
// listener, and on the main listener the one its check path fixes
// (/authz-envoy, /authz-nginx, /authz-traefik) or automatic for /authz.
// ok is false when be and rest are not a check.
func doorDialect(t *testing.T, cfg *config.Config, be backend, rest string) (d authz.Dialect, ok bool) {
	t.Helper()
	ports := configPorts(t, cfg)
	switch be.Port.ContainerPort {
	case ports["authz"]:
		d, err := authz.ParseDialect(cfg.Authz.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		return d, true
	case ports["grpc"]:
		return authz.DialectAmbassador, true
	case ports["http"]:
		for p, d := range map[string]authz.Dialect{"/authz-envoy": authz.DialectAmbassador, "/authz-nginx": authz.DialectNginx, "/authz-traefik": authz.DialectTraefik} {
			if r, ok := strings.CutPrefix(rest, p); ok && (r == "" || r[0] == '/' || r[0] == '?') {
				return d, true
			}
		}
		if strings.HasPrefix(rest, "/authz") {
			return authz.DialectAuto, true
		}
	}
	return authz.DialectAuto, false
}

// checkDialect fails unless the gateway reaches a check whose dialect is
// fixed to its own: the shipped configs never leave it to detection.
func checkDialect(t *testing.T, where string, cfg *config.Config, be backend, rest string, want authz.Dialect) {
	t.Helper()
	switch d, ok := doorDialect(t, cfg, be, rest); {
	case !ok:
		t.Errorf("%s reaches %s port %d%s, which is not a check", where, be.Command, be.Port.ContainerPort, rest)
	case d == authz.DialectAuto:
		t.Errorf("%s reaches a check of automatic dialect (port %d%s): fix it to %s (authz.dialect, or /authz-%[4]s on the main listener)",
			where, be.Port.ContainerPort, rest, dialectName(want))
	case d != want:
		t.Errorf("%s is a %s gateway but reaches a check fixed to %s (port %d%s)", where, want, d, be.Port.ContainerPort, rest)
	}
}

// dialectName is the configuration's name of d.
func dialectName(d authz.Dialect) string {
	if d == authz.DialectAmbassador {
		return "envoy"
	}
	return d.String()
}
