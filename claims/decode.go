package claims

import (
	"errors"
	"math"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4/jwt"
)

// ErrSyntax is returned by Decode for a payload that is not a claim set it
// accepts. It says nothing about which byte: the payload is an attacker's
// as often as ours.
var ErrSyntax = errors.New("claims: not a JSON claim set")

// maxDepth bounds the nesting of members Decode skips (encoding/json allows
// 10,000; nothing we issue nests at all).
const maxDepth = 32

// Decode decodes a JWT claim set (RFC 7519 §4) into c, which should be
// zero. It is what encoding/json does with a *Claims, about ten times
// faster, and stricter:
//
//   - member names match exactly (encoding/json also matches "ISS" to iss);
//   - a claim named twice is refused (RFC 7515 §5.2 allows refusing), an
//     unknown member named twice is ignored like any unknown member;
//   - invalid UTF-8 is refused (encoding/json replaces it);
//   - exp, nbf, iat and auth_time must be numbers of magnitude below 2^53;
//   - unknown members nest at most 32 deep.
//
// Strings without escapes share the payload's memory.
//
// Whatever Decode accepts, encoding/json accepts with the same result
// (the claims package's fuzz test checks this). Errors wrap ErrSyntax.
func Decode(data []byte, c *Claims) error {
	d := decoder{data: data, str0: string(data)}
	if err := d.object(c); err != nil {
		return err
	}
	d.space()
	if d.i != len(d.data) {
		return ErrSyntax
	}
	return nil
}

// decoder is a cursor over one payload.
type decoder struct {
	data []byte
	str0 string // data as one string: unescaped strings are slices of it
	i    int
	seen uint32 // bit per claim, for duplicates
}

// claim numbers, one bit each in decoder.seen.
const (
	cIss = iota
	cSub
	cAud
	cExp
	cNbf
	cIat
	cJti
	cAuthTime
	cNonce
	cAzp
	cAtHash
	cClientID
	cScope
	cSid
	cIatMs
	cPreferredUsername
	cName
	cEmail
	cEmailVerified
	cPicture
	cGroups
)

func (d *decoder) space() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips space and returns the next byte without consuming it; 0 at
// the end.
func (d *decoder) next() byte {
	d.space()
	if d.i >= len(d.data) {
		return 0
	}
	return d.data[d.i]
}

func (d *decoder) expect(b byte) error {
	if d.next() != b {
		return ErrSyntax
	}
	d.i++
	return nil
}

// object decodes the top-level object into c.
func (d *decoder) object(c *Claims) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.next() == '}' {
		d.i++
		return nil
	}
	for {
		if d.next() != '"' {
			return ErrSyntax
		}
		name, err := d.key()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := d.member(c, claimID(name)); err != nil {
			return err
		}
		switch d.next() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return ErrSyntax
		}
	}
}

// member decodes the value of the member with claim number id into c.
func (d *decoder) member(c *Claims, id int) error {
	if id < 0 {
		return d.skip(0)
	}
	if d.seen&(1<<id) != 0 {
		return ErrSyntax
	}
	d.seen |= 1 << id
	var err error
	switch id {
	case cIss:
		err = d.optString(&c.Issuer)
	case cSub:
		err = d.optString(&c.Subject)
	case cJti:
		err = d.optString(&c.ID)
	case cNonce:
		err = d.optString(&c.Nonce)
	case cAzp:
		err = d.optString(&c.AuthorizedParty)
	case cAtHash:
		err = d.optString(&c.AccessTokenHash)
	case cClientID:
		err = d.optString(&c.ClientID)
	case cScope:
		err = d.optString(&c.Scope)
	case cSid:
		err = d.optString(&c.SessionID)
	case cPreferredUsername:
		err = d.optString(&c.PreferredUsername)
	case cName:
		err = d.optString(&c.Name)
	case cEmail:
		err = d.optString(&c.Email)
	case cPicture:
		err = d.optString(&c.Picture)
	case cExp:
		c.Expiry, err = d.date()
	case cNbf:
		c.NotBefore, err = d.date()
	case cIat:
		c.IssuedAt, err = d.date()
	case cAuthTime:
		c.AuthTime, err = d.date()
	case cIatMs:
		err = d.int64(&c.IssuedAtMillis)
	case cEmailVerified:
		err = d.optBool(&c.EmailVerified)
	case cAud:
		c.Audience, err = d.audience()
	case cGroups:
		c.Groups, err = d.strings()
	}
	return err
}

// claimID is the claim number of a member name, -1 for an unknown one.
func claimID(name []byte) int {
	switch string(name) { // no allocation
	case "iss":
		return cIss
	case "sub":
		return cSub
	case "aud":
		return cAud
	case "exp":
		return cExp
	case "nbf":
		return cNbf
	case "iat":
		return cIat
	case "jti":
		return cJti
	case "auth_time":
		return cAuthTime
	case "nonce":
		return cNonce
	case "azp":
		return cAzp
	case "at_hash":
		return cAtHash
	case "client_id":
		return cClientID
	case "scope":
		return cScope
	case "sid":
		return cSid
	case "iat_ms":
		return cIatMs
	case "preferred_username":
		return cPreferredUsername
	case "name":
		return cName
	case "email":
		return cEmail
	case "email_verified":
		return cEmailVerified
	case "picture":
		return cPicture
	case "groups":
		return cGroups
	}
	return -1
}

// null consumes a null literal if one is next.
func (d *decoder) null() bool {
	if d.next() == 'n' && d.literal("null") {
		return true
	}
	return false
}

// literal consumes word if the input continues with it.
func (d *decoder) literal(word string) bool {
	if len(d.data)-d.i < len(word) || string(d.data[d.i:d.i+len(word)]) != word {
		return false
	}
	d.i += len(word)
	return true
}

// optString decodes a string, or null (which leaves dst alone, as
// encoding/json does).
func (d *decoder) optString(dst *string) error {
	if d.null() {
		return nil
	}
	if d.next() != '"' {
		return ErrSyntax
	}
	s, err := d.str()
	*dst = s
	return err
}

func (d *decoder) optBool(dst **bool) error {
	switch {
	case d.null():
		*dst = nil
	case d.literal("true"):
		t := true
		*dst = &t
	case d.literal("false"):
		f := false
		*dst = &f
	default:
		return ErrSyntax
	}
	return nil
}

// date decodes a NumericDate as go-jose does (a number, its fraction
// dropped), or null.
func (d *decoder) date() (*jwt.NumericDate, error) {
	if d.null() {
		return nil, nil
	}
	lit, err := d.number()
	if err != nil {
		return nil, err
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.Abs(f) >= 1<<53 {
		return nil, ErrSyntax
	}
	n := jwt.NumericDate(f)
	return &n, nil
}

// int64 decodes an integer as encoding/json does into an int64 (no
// fraction, no exponent), or null.
func (d *decoder) int64(dst *int64) error {
	if d.null() {
		return nil
	}
	lit, err := d.number()
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(lit, 10, 64)
	if err != nil {
		return ErrSyntax
	}
	*dst = n
	return nil
}

// audience decodes "aud": a string or an array of strings (RFC 7519
// §4.1.3). null is refused, as go-jose refuses it.
func (d *decoder) audience() (jwt.Audience, error) {
	switch d.next() {
	case '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return jwt.Audience{s}, nil
	case '[':
		list, err := d.strings()
		if err != nil {
			return nil, err
		}
		if list == nil {
			list = jwt.Audience{} // go-jose: an empty array is an empty audience
		}
		return list, nil
	}
	return nil, ErrSyntax
}

// strings decodes an array of strings, or null (nil).
func (d *decoder) strings() ([]string, error) {
	if d.null() {
		return nil, nil
	}
	if err := d.expect('['); err != nil {
		return nil, err
	}
	list := []string{}
	if d.next() == ']' {
		d.i++
		return list, nil
	}
	for {
		if d.next() != '"' {
			return nil, ErrSyntax
		}
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		list = append(list, s)
		switch d.next() {
		case ',':
			d.i++
		case ']':
			d.i++
			return list, nil
		default:
			return nil, ErrSyntax
		}
	}
}

// key decodes a member name without allocating when it has no escapes.
func (d *decoder) key() ([]byte, error) {
	raw, escaped, err := d.scanStr()
	switch {
	case err != nil:
		return nil, err
	case escaped:
		s, err := unescape(raw)
		return []byte(s), err
	}
	return raw[1 : len(raw)-1], nil
}

// str decodes the string starting at the current '"'. A string without
// escapes is a slice of the payload, allocating nothing.
func (d *decoder) str() (string, error) {
	start := d.i
	raw, escaped, err := d.scanStr()
	switch {
	case err != nil:
		return "", err
	case escaped:
		return unescape(raw)
	}
	return d.str0[start+1 : d.i-1], nil
}

// unescape decodes a quoted string with escapes (RFC 8259 §7) exactly as
// encoding/json does: a lone or reversed UTF-16 surrogate becomes U+FFFD.
// scanStr has checked the bytes between the escapes.
func unescape(raw []byte) (string, error) {
	s := raw[1 : len(raw)-1]
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			out = append(out, s[i])
			i++
			continue
		}
		if i+1 >= len(s) {
			return "", ErrSyntax
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(s[i+2:])
			if !ok {
				return "", ErrSyntax
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(s[min(i+2, len(s)):]); ok && i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
						out = utf8.AppendRune(out, dec)
						i += 6
						continue
					}
				}
				r = unicode.ReplacementChar
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return "", ErrSyntax
		}
		i += 2
	}
	return string(out), nil
}

// hex4 reads the four hex digits of a \u escape.
func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// scanStr consumes the string starting at the current '"' and returns it
// with its quotes, checking that it is valid UTF-8 without control bytes
// and that every escape is one of RFC 8259 §7; escaped reports one.
func (d *decoder) scanStr() (raw []byte, escaped bool, err error) {
	start := d.i
	d.i++ // the opening quote
	for d.i < len(d.data) {
		b := d.data[d.i]
		switch {
		case b == '"':
			d.i++
			return d.data[start:d.i], escaped, nil
		case b == '\\':
			escaped = true
			if d.i+1 >= len(d.data) {
				return nil, false, ErrSyntax
			}
			switch d.data[d.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i += 2
			case 'u':
				if _, ok := hex4(d.data[d.i+2:]); !ok {
					return nil, false, ErrSyntax
				}
				d.i += 6
			default:
				return nil, false, ErrSyntax
			}
		case b < 0x20:
			return nil, false, ErrSyntax
		case b < utf8.RuneSelf:
			d.i++
		default:
			r, n := utf8.DecodeRune(d.data[d.i:])
			if r == utf8.RuneError && n == 1 {
				return nil, false, ErrSyntax
			}
			d.i += n
		}
	}
	return nil, false, ErrSyntax
}

// number consumes a JSON number (RFC 8259 §6) and returns its literal.
func (d *decoder) number() (string, error) {
	d.space()
	start := d.i
	if d.i < len(d.data) && d.data[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.data) && d.data[d.i] == '0':
		d.i++
	case d.digits() == 0:
		return "", ErrSyntax
	}
	if d.i < len(d.data) && d.data[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return "", ErrSyntax
		}
	}
	if d.i < len(d.data) && (d.data[d.i] == 'e' || d.data[d.i] == 'E') {
		d.i++
		if d.i < len(d.data) && (d.data[d.i] == '+' || d.data[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return "", ErrSyntax
		}
	}
	return d.str0[start:d.i], nil
}

func (d *decoder) digits() int {
	n := 0
	for d.i < len(d.data) && d.data[d.i] >= '0' && d.data[d.i] <= '9' {
		d.i++
		n++
	}
	return n
}

// skip consumes and validates one value of an unknown member.
func (d *decoder) skip(depth int) error {
	if depth > maxDepth {
		return ErrSyntax
	}
	switch b := d.next(); {
	case b == '"':
		_, _, err := d.scanStr()
		return err
	case b == '{':
		d.i++
		if d.next() == '}' {
			d.i++
			return nil
		}
		for {
			if d.next() != '"' {
				return ErrSyntax
			}
			if _, _, err := d.scanStr(); err != nil {
				return err
			}
			if err := d.expect(':'); err != nil {
				return err
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			switch d.next() {
			case ',':
				d.i++
			case '}':
				d.i++
				return nil
			default:
				return ErrSyntax
			}
		}
	case b == '[':
		d.i++
		if d.next() == ']' {
			d.i++
			return nil
		}
		for {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			switch d.next() {
			case ',':
				d.i++
			case ']':
				d.i++
				return nil
			default:
				return ErrSyntax
			}
		}
	case b == '-' || (b >= '0' && b <= '9'):
		_, err := d.number()
		return err
	case d.literal("true"), d.literal("false"), d.literal("null"):
		return nil
	}
	return ErrSyntax
}
