package authz

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/ghbroker/ghbroker/claims"
)

// The identity-header memo outlives the request: it must not keep the
// request's Cookie line alive through the token, a slice of it.
func TestHeaderMemoKeepsNoSliceOfTheRequest(t *testing.T) {
	m := newHeaderMemo()
	tok := "eyJ." + strings.Repeat("p", 300) + "." + strings.Repeat("s", 342)
	line := strings.Repeat("x", 60<<10) + "; _ghbroker=" + tok
	tok = line[len(line)-len(tok):]
	c := &claims.Claims{PreferredUsername: "alice"}
	a := m.get(c, tok, nil)
	start := uintptr(unsafe.Pointer(unsafe.StringData(line)))
	if p := uintptr(unsafe.Pointer(unsafe.StringData(a.tokenTail))); p >= start && p < start+uintptr(len(line)) {
		t.Fatal("the memo keeps a slice of the request's Cookie line")
	}
	if got := a.authorization; len(got) != 1 || got[0] != "Bearer "+tok {
		t.Fatalf("authorization = %q", got)
	}
	if again := m.get(c, tok, nil); again != a {
		t.Fatal("a second check of the same token rebuilt its headers")
	}
}

// A memo entry answers only for the token it was built for, even when a
// verifier hands out the same claims for another token: the forwarded
// Authorization is the request's own token.
func TestHeaderMemoTellsTokensApartUnderOneClaims(t *testing.T) {
	m := newHeaderMemo()
	c := &claims.Claims{PreferredUsername: "alice"}
	sig := strings.Repeat("s", 342)
	tok := "eyJ.a." + sig
	for _, other := range []string{
		"eyJ.a." + sig[:341] + "t", // another signature
		"eyJ.ab." + sig,            // the same tail, another length
		"t",                        // shorter than the compared tail
	} {
		a := m.get(c, tok, nil)
		b := m.get(c, other, nil)
		if b == a || b.authorization[0] != "Bearer "+other {
			t.Fatalf("token %.12q… was answered with the headers of another token", other)
		}
		if again := m.get(c, tok, nil); again.authorization[0] != "Bearer "+tok {
			t.Fatal("the first token was answered with the second's headers")
		}
	}
}
