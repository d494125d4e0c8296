// Package secret is the broker's one source of random tokens and the one
// way it stores and compares bearer secrets (states, codes, refresh and
// renewal secrets): hashed with SHA-256, compared in constant time.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
)

// Random returns n bytes from crypto/rand, base64url-encoded without
// padding. It is the one source of randomness for ids, states, secrets and
// codes.
func Random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+: it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash is the stored form of a bearer secret.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Matches reports, in constant time, whether s hashes to hash.
func Matches(hash, s string) bool {
	return subtle.ConstantTimeCompare([]byte(Hash(s)), []byte(hash)) == 1
}

// Letters returns n characters drawn uniformly from alphabet (at most 256
// distinct bytes) with crypto/rand: bytes that would bias the choice are
// drawn again.
func Letters(alphabet string, n int) string {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	var b [1]byte
	for len(out) < n {
		_, _ = rand.Read(b[:])
		if int(b[0]) < limit {
			out = append(out, alphabet[int(b[0])%len(alphabet)])
		}
	}
	return string(out)
}
