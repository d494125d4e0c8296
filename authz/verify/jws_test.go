package verify

import (
	"errors"
	"strings"
	"testing"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/keys"
)

func TestPeekAndKindOf(t *testing.T) {
	e := vtNewEnv(t, keys.ES256)
	priv, kid := e.current(t)
	payload := vtJSON(t, e.claims(claims.KindAccess))
	raw := func(typ string) string { return vtSignRaw(t, "ES256", priv, vtHeader(t, "ES256", kid, typ), payload) }
	for _, tt := range []struct {
		name  string
		token string
		kind  claims.Kind // "" with ok false
	}{
		{"session", e.sign(t, claims.KindSession, e.claims(claims.KindSession)), claims.KindSession},
		{"access", e.sign(t, claims.KindAccess, e.claims(claims.KindAccess)), claims.KindAccess},
		{"ID", e.sign(t, claims.KindID, e.claims(claims.KindID)), claims.KindID},
		{"media type with prefix, any case", raw("Application/AT+JWT"), claims.KindAccess},
		{"ID token as application/jwt", raw("application/jwt"), claims.KindID},
		{"unknown typ", raw("dpop+jwt"), ""},
		{"two slashes", raw("application/x/jwt"), ""},
		{"no typ", vtSignRaw(t, "ES256", priv, []byte(`{"alg":"ES256","kid":"`+kid+`"}`), payload), ""},
		{"crit header", vtSignRaw(t, "ES256", priv, []byte(`{"alg":"ES256","typ":"JWT","crit":["exp"]}`), payload), ""},
		{"not a JWS", "hello", ""},
		{"four segments", "a.b.c.d", ""},
		{"too large", strings.Repeat("A", defaultMaxTokenBytes+1) + ".e30.", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kind, ok := KindOf(tt.token)
			if kind != tt.kind || ok != (tt.kind != "") {
				t.Errorf("KindOf = %q, %v; want %q", kind, ok, tt.kind)
			}
			h, err := Peek(tt.token)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("Peek error %v does not wrap ErrMalformed", err)
				}
				return
			}
			if h.Alg != "ES256" || h.Kid != kid {
				t.Errorf("Peek = %+v", h)
			}
		})
	}
}
