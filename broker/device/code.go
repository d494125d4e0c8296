package device

import (
	"strings"

	"github.com/ghbroker/ghbroker/broker/internal/secret"
)

// Alphabet is the user-code alphabet: 20 consonants, no vowels (no words)
// and no look-alikes, as RFC 8628 §6.1 suggests. 8 letters give
// 20^8 ≈ 2.56e10 codes.
const Alphabet = "BCDFGHJKLMNPQRSTVWXZ"

// userCodeLen is the number of letters in a user code.
const userCodeLen = 8

// newUserCode draws a normalised user code.
func newUserCode() string { return secret.Letters(Alphabet, userCodeLen) }

// formatUserCode shows a normalised code as XXXX-XXXX.
func formatUserCode(c string) string {
	if len(c) != userCodeLen {
		return c
	}
	return c[:4] + "-" + c[4:]
}

// normaliseUserCode reads what a person typed: case-insensitive, with or
// without the hyphen and surrounding spaces. ok is false unless the result
// is 8 letters of the alphabet.
func normaliseUserCode(in string) (code string, ok bool) {
	if len(in) > 32 {
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.TrimSpace(in) {
		if r >= 'a' && r <= 'z' {
			r -= 'a' - 'A' // ASCII only: Unicode case folding maps ſ to S
		}
		switch {
		case r == '-' || r == ' ':
			continue
		case r < 0x80 && strings.IndexByte(Alphabet, byte(r)) >= 0:
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	if b.Len() != userCodeLen {
		return "", false
	}
	return b.String(), true
}
