package claims

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// fullClaims sets every claim, as the broker's tokens together do.
func fullClaims() *Claims {
	now := time.Unix(1_790_000_000, 0)
	t := true
	return &Claims{
		Claims: jwt.Claims{Issuer: "https://auth.example.com", Subject: "1001", Audience: jwt.Audience{"https://auth.example.com", "https://auth.example.com/gateway"},
			Expiry: jwt.NewNumericDate(now.Add(time.Hour)), NotBefore: jwt.NewNumericDate(now), IssuedAt: jwt.NewNumericDate(now), ID: "tok-1"},
		AuthTime: jwt.NewNumericDate(now.Add(-time.Minute)), Nonce: "n-0S6_WzA2Mj", AuthorizedParty: "grafana",
		AccessTokenHash: "77QmUPtjPfzWtF2AnpK9RQ", ClientID: "grafana", Scope: "openid profile groups", SessionID: "s-42",
		IssuedAtMillis: now.UnixMilli() + 123, PreferredUsername: "alice", Name: "Alice Liddell \"Al\" \u00e9\u6f22",
		Email: "alice@example.com", EmailVerified: &t, Picture: "https://avatars.example.com/u/1001",
		Groups: []string{"acme", "acme/sre", "acme/dev"},
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	for name, c := range map[string]*Claims{
		"every claim":  fullClaims(),
		"none":         {},
		"one audience": {Claims: jwt.Claims{Issuer: "i", Audience: jwt.Audience{"a"}}},
		"empty groups": {Groups: []string{}},
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			var got Claims
			if err := Decode(raw, &got); err != nil {
				t.Fatalf("Decode(%s): %v", raw, err)
			}
			var want Claims
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&got, &want) {
				t.Fatalf("Decode(%s)\n got %+v\nwant %+v", raw, got, want)
			}
		})
	}
}

func TestDecodeAsEncodingJSON(t *testing.T) {
	// Inputs both decoders accept, with the same result.
	for _, in := range []string{
		` { "iss" : "x" , "aud" : "single" } `,
		`{"aud":[],"groups":null,"email_verified":null,"exp":null}`,
		`{"exp":1.9e9,"nbf":-5,"iat":0,"iat_ms":-0}`,
		`{"exp":1790000000.75}`,
		`{"sub":"\u0041\n\"\\\/ \ud83d\ude00"}`,
		`{"unknown":{"a":[1,{"b":null}],"c":true},"x":"y","x":2,"sub":"1"}`,
		`{"iss":null,"sub":"1"}`,
		`{"\u0069ss":"escaped name"}`,
		`{}`,
	} {
		var got, want Claims
		if err := Decode([]byte(in), &got); err != nil {
			t.Errorf("Decode(%s): %v", in, err)
			continue
		}
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("encoding/json refuses %s: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Decode(%s)\n got %+v\nwant %+v", in, got, want)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	for why, in := range map[string]string{
		"empty":                       ``,
		"not an object":               `["iss"]`,
		"a string":                    `"iss"`,
		"trailing data":               `{"iss":"x"} {}`,
		"trailing comma":              `{"iss":"x",}`,
		"missing colon":               `{"iss" "x"}`,
		"unterminated":                `{"iss":"x"`,
		"unterminated string":         `{"iss":"x}`,
		"a claim twice":               `{"sub":"1","sub":"2"}`,
		"exp twice":                   `{"exp":1,"exp":2}`,
		"invalid UTF-8":               "{\"sub\":\"\xff\"}",
		"invalid UTF-8 in a name":     "{\"\xc3\":1}",
		"control byte in a string":    "{\"sub\":\"a\tb\"}",
		"bad escape":                  `{"sub":"\x41"}`,
		"iss a number":                `{"iss":5}`,
		"aud null":                    `{"aud":null}`,
		"aud a number":                `{"aud":5}`,
		"aud of numbers":              `{"aud":[5]}`,
		"groups a string":             `{"groups":"acme"}`,
		"groups with null":            `{"groups":["a",null]}`,
		"exp a string":                `{"exp":"1790000000"}`,
		"exp beyond 2^53":             `{"exp":1e300}`,
		"iat_ms with a fraction":      `{"iat_ms":1.5}`,
		"iat_ms with an exponent":     `{"iat_ms":1e3}`,
		"leading zero":                `{"exp":01}`,
		"bare minus":                  `{"exp":-}`,
		"fraction without digits":     `{"exp":1.}`,
		"email_verified a string":     `{"email_verified":"true"}`,
		"truncated literal":           `{"x":tru}`,
		"unknown member unterminated": `{"x":[1,2`,
		"nesting too deep":            `{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
		"NaN":                         `{"exp":NaN}`,
		"a claim's name in capitals":  `{"ISS":"x"}`,
		"a claim's name folded":       `{"ſub":"1"}`,
		"iat_ms in mixed case":        `{"iAt_ms":""}`,
	} {
		var c Claims
		if err := Decode([]byte(in), &c); !errors.Is(err, ErrSyntax) {
			t.Errorf("%s: Decode(%q) = %v, want ErrSyntax", why, in, err)
		}
	}
}

// FuzzDecode is a differential test against encoding/json: Decode never
// accepts what encoding/json refuses, and what it accepts decodes the same.
func FuzzDecode(f *testing.F) {
	full, _ := json.Marshal(fullClaims())
	for _, s := range []string{
		string(full), `{}`, `{"aud":"a"}`, `{"aud":[]}`, `{"sub":"\u00e9\ud800"}`, `{"ISS":"x"}`, `{"ſub":"1"}`,
		`{"exp":1e5,"iat_ms":12}`, `{"groups":null,"x":{"y":[true,false,null,-1.5e-3]}}`, `{"sub":"1","sub":"2"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, want Claims
		err := Decode(data, &got)
		if err != nil && !errors.Is(err, ErrSyntax) {
			t.Fatalf("Decode(%q) = %v, not wrapping ErrSyntax", data, err)
		}
		wantErr := json.Unmarshal(data, &want)
		switch {
		case err != nil:
			return // stricter is allowed
		case wantErr != nil:
			t.Fatalf("Decode(%q) accepts what encoding/json refuses (%v)", data, wantErr)
		case !reflect.DeepEqual(got, want):
			t.Fatalf("Decode(%q)\n got %+v\nwant %+v", data, got, want)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	raw, _ := json.Marshal(fullClaims())
	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c Claims
			if err := Decode(raw, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c Claims
			if err := json.Unmarshal(raw, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDecodeKnowsEveryClaim: every JSON member of Claims (and of the
// embedded jwt.Claims) is a claim Decode decodes, in claimID's numbering;
// a claim added to the struct and not to Decode would be dropped silently.
func TestDecodeKnowsEveryClaim(t *testing.T) {
	var tags []string
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for f := range typ.Fields() {
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
				tags = append(tags, name)
			}
		}
	}
	walk(reflect.TypeFor[Claims]())
	if len(tags) != len(claimNames) {
		t.Errorf("Claims has %d JSON members, Decode knows %d", len(tags), len(claimNames))
	}
	for _, name := range tags {
		if claimID([]byte(name)) < 0 {
			t.Errorf("claim %q of Claims is unknown to Decode", name)
		}
	}
	for i, name := range claimNames {
		if claimID([]byte(name)) != i {
			t.Errorf("claimNames[%d] = %q, but claimID says %d", i, name, claimID([]byte(name)))
		}
	}
}
