package authz

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/ghbroker/ghbroker/claims"
)

// The identity-header memo outlives the request: it must not keep the
// request's Cookie line alive through the token, a slice of it.
func TestHeaderMemoKeepsOnlyTheToken(t *testing.T) {
	m := newHeaderMemo()
	line := strings.Repeat("x", 60<<10) + "; _ghbroker=eyJ.tok.sig"
	tok := line[len(line)-len("eyJ.tok.sig"):]
	c := &claims.Claims{PreferredUsername: "alice"}
	a := m.get(c, tok, nil)
	if a.token != tok {
		t.Fatalf("memo token = %q", a.token)
	}
	start := uintptr(unsafe.Pointer(unsafe.StringData(line)))
	if p := uintptr(unsafe.Pointer(unsafe.StringData(a.token))); p >= start && p < start+uintptr(len(line)) {
		t.Fatal("the memo keeps a slice of the request's Cookie line")
	}
	if got := a.authorization; len(got) != 1 || got[0] != "Bearer "+tok {
		t.Fatalf("authorization = %q", got)
	}
	if again := m.get(c, tok, nil); again != a {
		t.Fatal("a second check of the same token rebuilt its headers")
	}
}
