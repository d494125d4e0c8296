package claims

import (
	"bytes"
	"errors"
	"math"
	"strconv"

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
//   - member names match exactly, and a name that matches a claim only
//     without case ("ISS", "ſub") is refused: encoding/json would take it
//     for the claim, another parser would not;
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
	return d.members(false, func(name []byte) error {
		id := claimID(name)
		if id < 0 && foldsToClaim(name) {
			return ErrSyntax
		}
		return d.member(c, id)
	})
}

// claimNames are the names claimID knows.
var claimNames = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "auth_time", "nonce", "azp", "at_hash",
	"client_id", "scope", "sid", "iat_ms", "preferred_username", "name", "email", "email_verified", "picture", "groups"}

// foldsToClaim reports whether name, not a claim's, matches one without
// case (Unicode simple folding, as encoding/json matches names).
func foldsToClaim(name []byte) bool {
	for _, c := range claimNames {
		if bytes.EqualFold(name, []byte(c)) {
			return true
		}
	}
	return false
}

// members reads the object at the cursor, calling each for every member
// with the cursor on its value (names decoded unless skipping: a skipped
// object's names are only checked).
func (d *decoder) members(skipping bool, each func(name []byte) error) error {
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
		var name []byte
		var err error
		if skipping {
			_, _, err = d.scanStr()
		} else {
			name, err = d.key()
		}
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := each(name); err != nil {
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

// elements reads the array at the cursor, calling each for every element
// with the cursor on it.
func (d *decoder) elements(each func() error) error {
	if err := d.expect('['); err != nil {
		return err
	}
	if d.next() == ']' {
		d.i++
		return nil
	}
	for {
		if err := each(); err != nil {
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
	list := []string{}
	err := d.elements(func() error {
		if d.next() != '"' {
			return ErrSyntax
		}
		s, err := d.str()
		list = append(list, s)
		return err
	})
	if err != nil {
		return nil, err
	}
	return list, nil
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
		return d.members(true, func([]byte) error { return d.skip(depth + 1) })
	case b == '[':
		return d.elements(func() error { return d.skip(depth + 1) })
	case b == '-' || (b >= '0' && b <= '9'):
		_, err := d.number()
		return err
	case d.literal("true"), d.literal("false"), d.literal("null"):
		return nil
	}
	return ErrSyntax
}
