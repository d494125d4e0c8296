package claims

import (
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON lexemes of Decode: strings (RFC 8259 §7) and numbers (§6).

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
