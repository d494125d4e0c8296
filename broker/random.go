package broker

import (
	"crypto/rand"
	"encoding/base64"
)

// randomToken returns n bytes from crypto/rand, base64url-encoded. It is
// the one source of randomness for ids, states, secrets and codes.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+: it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}
