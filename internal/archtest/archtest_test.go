package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/ghbroker/ghbroker/"

// forbidden lists, for a package, the packages of ours it must not depend
// on, directly or not (non-test code).
var forbidden = map[string][]string{
	"authz": {"broker", "store", "store/bolt", "store/memory", "internal/githubfake", "internal/config"},
	// Verification is shared by authz, the session code and the broker's
	// hint checks, and stays below all of them.
	"authz/verify": {"authz", "broker", "store", "store/bolt", "store/memory", "keys", "internal/githubfake"},
	"keys":         {"broker", "authz", "store/bolt", "store/memory"},
	"store":        {"keys", "broker", "authz", "claims"},
	// Engines sit below everything but the contract.
	"store/etcd": {"keys", "broker", "authz", "claims", "store/bolt", "store/memory", "internal/config"},
	// The binary never links the embedded test server or the suite.
	"cmd/ghbroker": {"store/etcd/etcdtest", "store/storetest", "store/memory"},
	"claims":       {"*"},
	"web":          {"*"},
	"broker":       {"store/bolt", "internal/githubfake", "cmd/ghbroker"},
	// Sessions serve no routes: they never reach the HTTP handlers.
	"broker/session": {"broker", "broker/signin", "broker/oidc", "store/bolt", "store/memory", "internal/githubfake"},
	// Domain handlers do not import each other nor the assembly.
	"broker/signin":  {"broker", "broker/oidc", "broker/device", "store/bolt", "store/memory", "internal/githubfake"},
	"broker/oidc":    {"broker", "broker/signin", "broker/device", "store/bolt", "store/memory", "internal/githubfake"},
	"broker/webhook": {"broker", "broker/signin", "broker/oidc", "broker/device", "broker/session", "store/bolt", "store/memory", "internal/githubfake"},
	// The revocation set is shared by the broker and every authz replica:
	// it knows no broker, store or key code.
	"revocation":    {"broker", "store", "authz", "keys", "internal/githubfake"},
	"broker/device": {"broker", "broker/signin", "broker/oidc", "store/bolt", "store/memory", "internal/githubfake"},
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Deps", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rules, ok := forbidden[strings.TrimPrefix(p.ImportPath, mod)]
		if !ok {
			continue
		}
		seen++
		for _, d := range p.Deps {
			ours, isOurs := strings.CutPrefix(d, mod)
			if !isOurs {
				continue
			}
			for _, f := range rules {
				if f == "*" || ours == f {
					t.Errorf("%s depends on %s", p.ImportPath, d)
				}
			}
		}
	}
	if seen != len(forbidden) {
		t.Fatalf("checked %d packages, expected %d: a package was renamed", seen, len(forbidden))
	}
}
