package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/ghbroker/ghbroker/claims"
)

// Header is the protected header of the tokens we issue: nothing else is
// accepted in it (no "crit", "jku", "jwk", "x5c"…).
type Header struct {
	// Alg is the signature algorithm (RFC 7515 §4.1.1).
	Alg string `json:"alg"`
	// Kid names the signing key (RFC 7515 §4.1.4).
	Kid string `json:"kid"`
	// Typ is the token's media type (RFC 7515 §4.1.9): see KindOf.
	Typ string `json:"typ"`
}

// Peek decodes the protected header of a compact JWS without verifying
// anything: what it returns is a claim of the token's, to be trusted only
// after Verify. It refuses what Verify refuses before any key is looked
// up: not a compact JWS, longer than the default MaxTokenBytes, or a header
// with members other than alg, kid and typ. Errors wrap ErrMalformed.
func Peek(token string) (Header, error) {
	if len(token) > defaultMaxTokenBytes {
		return Header{}, fmt.Errorf("%w: token too large", ErrMalformed)
	}
	dot1, _, ok := splitCompact(token)
	if !ok {
		return Header{}, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	return decodeHeader(token[:dot1])
}

// KindOf is the kind a token says it is, by its "typ" header, with the
// rule Verify applies (RFC 7515 §4.1.9: compared without case and with an
// optional "application/" prefix). It verifies nothing: use it to choose
// which kind to Verify a token as, never to accept one. ok is false for a
// token that does not parse or names no kind we issue.
func KindOf(token string) (kind claims.Kind, ok bool) {
	h, err := Peek(token)
	if err != nil {
		return "", false
	}
	for _, k := range [...]claims.Kind{claims.KindID, claims.KindAccess, claims.KindSession} {
		if typMatches(h.Typ, k) {
			return k, true
		}
	}
	return "", false
}

// b64 decodes JWS segments: base64url without padding, and only the
// canonical encoding (no stray bits), so that no two distinct strings
// verify as the same token.
var b64 = base64.RawURLEncoding.Strict()

// typMatches compares a "typ" header with the kind's media type, ignoring
// case and an "application/" prefix (RFC 7515 §4.1.9; RFC 9068 §2.1
// registers "application/at+jwt").
func typMatches(typ string, kind claims.Kind) bool {
	const prefix = "application/"
	if len(typ) > len(prefix) && strings.EqualFold(typ[:len(prefix)], prefix) {
		typ = typ[len(prefix):]
		if strings.IndexByte(typ, '/') >= 0 {
			return false
		}
	}
	return strings.EqualFold(typ, string(kind))
}

// asymmetric reports whether alg is one of the asymmetric JWS
// algorithms, the only ones a Verifier accepts: never "none", never an HMAC
// (RFC 8725 §3.1, §3.2).
func asymmetric(alg jose.SignatureAlgorithm) bool {
	return alg == jose.EdDSA || hashOf(alg) != 0
}

// hashOf is the digest of a JWS algorithm (RFC 7518 §3.1); zero for
// EdDSA, which hashes internally.
func hashOf(alg jose.SignatureAlgorithm) crypto.Hash {
	switch alg {
	case jose.RS256, jose.PS256, jose.ES256:
		return crypto.SHA256
	case jose.RS384, jose.PS384, jose.ES384:
		return crypto.SHA384
	case jose.RS512, jose.PS512, jose.ES512:
		return crypto.SHA512
	}
	return 0
}

// keyFits reports whether key is a public key of the type (and, for
// RSA, the size: RFC 7518 §3.3) that alg needs.
func keyFits(alg jose.SignatureAlgorithm, key any) bool {
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		k, ok := key.(*rsa.PublicKey)
		return ok && k != nil && k.N != nil && k.N.BitLen() >= 2048
	case jose.ES256, jose.ES384, jose.ES512:
		k, ok := key.(*ecdsa.PublicKey)
		if !ok || k == nil {
			return false
		}
		switch alg {
		case jose.ES256:
			return k.Curve == elliptic.P256()
		case jose.ES384:
			return k.Curve == elliptic.P384()
		}
		return k.Curve == elliptic.P521()
	case jose.EdDSA:
		k, ok := key.(ed25519.PublicKey)
		return ok && len(k) == ed25519.PublicKeySize
	}
	return false
}

// verifySignature checks the signature sig of the signing input (the token up to
// its second dot, RFC 7515 §5.2) with key, which keyFits accepted for
// alg. It knows the asymmetric algorithms of RFC 7518 §3.3–3.5 and RFC 8037
// §3.1 only: there is no path at all for "none" or an HMAC.
//
// It verifies the exact bytes received rather than re-encoding a parsed
// header and payload as go-jose does, which on the hot path costs as much
// as a third of an RS256 verification.
func verifySignature(alg jose.SignatureAlgorithm, key any, input string, sig []byte) bool {
	if alg == jose.EdDSA {
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(key.(ed25519.PublicKey), []byte(input), sig)
	}
	hf := hashOf(alg)
	var digest []byte
	switch hf {
	case crypto.SHA256:
		d := sha256.Sum256([]byte(input))
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384([]byte(input))
		digest = d[:]
	case crypto.SHA512:
		d := sha512.Sum512([]byte(input))
		digest = d[:]
	default:
		return false
	}
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512:
		return rsa.VerifyPKCS1v15(key.(*rsa.PublicKey), hf, digest, sig) == nil
	case jose.PS256, jose.PS384, jose.PS512:
		// RFC 7518 §3.5: the salt is as long as the hash.
		return rsa.VerifyPSS(key.(*rsa.PublicKey), hf, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case jose.ES256, jose.ES384, jose.ES512:
		// RFC 7518 §3.4: R and S as fixed-size big-endian octets.
		k := key.(*ecdsa.PublicKey)
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, digest, r, s)
	}
	return false
}

// splitCompact finds the two dots of a compact JWS (RFC 7515 §7.1):
// exactly two, the header not empty. Line breaks, which the base64 decoder
// would skip, are refused; the decoder refuses every other stray byte.
func splitCompact(token string) (dot1, dot2 int, ok bool) {
	dot1 = strings.IndexByte(token, '.')
	if dot1 <= 0 {
		return 0, 0, false
	}
	dot2 = strings.IndexByte(token[dot1+1:], '.')
	if dot2 < 0 {
		return 0, 0, false
	}
	dot2 += dot1 + 1
	if strings.IndexByte(token[dot2+1:], '.') >= 0 || strings.ContainsAny(token, "\r\n") {
		return 0, 0, false
	}
	return dot1, dot2, true
}

// decodeHeader decodes the protected header, refusing any member other than
// alg, kid and typ (names compared exactly), values other than strings, and
// anything that is not one JSON object.
func decodeHeader(seg string) (Header, error) {
	var h Header
	raw, err := b64.DecodeString(seg)
	if err != nil {
		return h, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return h, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	for name, value := range members {
		var dst *string
		switch name {
		case "alg":
			dst = &h.Alg
		case "kid":
			dst = &h.Kid
		case "typ":
			dst = &h.Typ
		default:
			return h, fmt.Errorf("%w: header members other than alg, kid and typ", ErrMalformed)
		}
		if value[0] != '"' || json.Unmarshal(value, dst) != nil {
			return h, fmt.Errorf("%w: header member is not a string", ErrMalformed)
		}
	}
	return h, nil
}
