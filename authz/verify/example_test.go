package verify_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/authz/verify"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/store/memory"
)

const exampleIssuer = "https://auth.example.com"

// exampleClock is a fixed clock, so that the examples' output is stable.
func exampleClock() time.Time { return time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) }

// exampleManager is the broker's key manager, signing with Ed25519.
func exampleManager() *keys.Manager {
	m, err := keys.NewManager(context.Background(), memory.New(memory.Options{Now: exampleClock}),
		keys.Options{Algorithm: keys.EdDSA, Now: exampleClock})
	if err != nil {
		log.Fatal(err)
	}
	return m
}

// exampleSession signs a session token as the broker does.
func exampleSession(m *keys.Manager, exp time.Time) string {
	tok, err := m.Sign(claims.KindSession, &claims.Claims{
		Claims: jwt.Claims{
			Issuer: exampleIssuer, Audience: jwt.Audience{exampleIssuer}, Subject: "583231",
			IssuedAt: jwt.NewNumericDate(exampleClock()), Expiry: jwt.NewNumericDate(exp),
		},
		PreferredUsername: "octocat",
		Groups:            []string{"acme", "acme/sre"},
	})
	if err != nil {
		log.Fatal(err)
	}
	return tok
}

// A Verifier in the broker's own process reads the key manager's keys from
// memory.
func ExampleVerifier() {
	m := exampleManager()
	v, err := verify.New(verify.Options{Issuer: exampleIssuer, Keys: m, Now: exampleClock})
	if err != nil {
		log.Fatal(err)
	}
	tok := exampleSession(m, exampleClock().Add(time.Hour))

	c, err := v.Verify(tok, claims.KindSession)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.PreferredUsername, c.Groups)

	// A session token is never an access token.
	_, err = v.Verify(tok, claims.KindAccess)
	fmt.Println(errors.Is(err, verify.ErrType), err)
	// Output:
	// octocat [acme acme/sre]
	// true verify: wrong token type: not an access token
}

// Callers tell an expired token from an invalid one with errors.As.
func ExampleTokenExpiredError() {
	m := exampleManager()
	now := exampleClock()
	v, err := verify.New(verify.Options{Issuer: exampleIssuer, Keys: m, Now: func() time.Time { return now.Add(2 * time.Hour) }})
	if err != nil {
		log.Fatal(err)
	}
	_, err = v.Verify(exampleSession(m, now.Add(time.Hour)), claims.KindSession)
	var expired *verify.TokenExpiredError
	if errors.As(err, &expired) {
		fmt.Println("expired at", expired.Expiry.UTC().Format(time.RFC3339))
	}
	fmt.Println(errors.Is(err, verify.ErrExpired))
	// Output:
	// expired at 2026-05-01T13:00:00Z
	// true
}

// Repeated checks of a token are answered from the cache.
func ExampleVerifier_CacheStats() {
	m := exampleManager()
	v, err := verify.New(verify.Options{Issuer: exampleIssuer, Keys: m, Now: exampleClock})
	if err != nil {
		log.Fatal(err)
	}
	tok := exampleSession(m, exampleClock().Add(time.Hour))
	for range 3 {
		if _, err := v.Verify(tok, claims.KindSession); err != nil {
			log.Fatal(err)
		}
	}
	hits, misses, size := v.CacheStats()
	fmt.Println(hits, misses, size)
	// Output: 2 1 1
}

// A stateless authz replica has no store: it reads the broker's published
// key set and keeps it fresh with Run.
func ExampleNewRemote() {
	m := exampleManager()
	broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(m.JWKS())
	}))
	defer broker.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ks, err := verify.NewRemote(ctx, verify.RemoteOptions{JWKSURL: broker.URL + "/keys"})
	if err != nil {
		log.Fatal(err)
	}
	go ks.Run(ctx)

	v, err := verify.New(verify.Options{Issuer: exampleIssuer, Keys: ks, Now: exampleClock})
	if err != nil {
		log.Fatal(err)
	}
	c, err := v.Verify(exampleSession(m, exampleClock().Add(time.Hour)), claims.KindSession)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Subject, !ks.LoadedAt().IsZero())
	// Output: 583231 true
}

// KindOf says which kind to verify a token as; only Verify says whether to
// accept it.
func ExampleKindOf() {
	m := exampleManager()
	tok := exampleSession(m, exampleClock().Add(time.Hour))
	kind, ok := verify.KindOf(tok)
	fmt.Println(kind, ok)
	_, ok = verify.KindOf("not a token")
	fmt.Println(ok)
	// Output:
	// ghbroker-session+jwt true
	// false
}

// An RP-Initiated Logout id_token_hint is accepted after its ID token
// expired, and for any client: the caller checks "aud" against the client
// it knows.
func ExampleVerifier_VerifyIDTokenHint() {
	m := exampleManager()
	now := exampleClock()
	idToken, err := m.Sign(claims.KindID, &claims.Claims{Claims: jwt.Claims{
		Issuer: exampleIssuer, Audience: jwt.Audience{"grafana"}, Subject: "583231",
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour)),
	}})
	if err != nil {
		log.Fatal(err)
	}
	v, err := verify.New(verify.Options{Issuer: exampleIssuer, Keys: m, Now: func() time.Time { return now.Add(24 * time.Hour) }})
	if err != nil {
		log.Fatal(err)
	}
	c, err := v.VerifyIDTokenHint(idToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Subject, c.Audience.Contains("grafana"))
	// Output: 583231 true
}
