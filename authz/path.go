package authz

import (
	"net/url"
	"path"
	"strings"
	"unicode/utf8"
)

// One meaning per path. Gateways forward the path as the client sent it,
// and upstream routers read it in different ways: one resolves "..", one
// decodes %2F into a slash, Tomcat drops ";parameters", IIS takes "\" for
// "/". A check that decided on one reading of /admin/..;/public while the
// upstream routed another would let an anonymous request through to
// /admin. So the check decides only on paths that every reading agrees
// on: a path already in normal form.

// pathForm is what checkPath says of a request path as sent.
type pathForm uint8

const (
	// pathNormal: every upstream reads the path the same way.
	pathNormal pathForm = iota
	// pathUnnormalized: upstreams may read the path differently (dot
	// segments, "//", "\", ";", "#", or an escape that decodes into one
	// of those, into "%", "?" or an unreserved character).
	pathUnnormalized
	// pathMalformed: not a path at all (no leading "/", a bad escape, a
	// control character, NUL).
	pathMalformed
)

// checkPath classifies the raw path p (the request target before "?") and,
// for a path in normal form, returns the form rules match against: p with
// its remaining escapes decoded (a space, "é", a sub-delimiter). A path in
// normal form
//
//   - starts with "/" and has no empty segment but a trailing one ("//"),
//   - has no "." or ".." segment (escaped ones included),
//   - has no "\", ";" or "#", raw or escaped, nor an escaped "/", "%" or
//     "?", and no escaped unreserved character (RFC 3986 §2.3: "%61dmin"
//     is "admin" to a router that decodes it, and something else to one
//     that does not),
//   - is valid UTF-8 once decoded, without control characters.
//
// It does not allocate for a path without escapes.
func checkPath(p string) (match string, form pathForm) {
	if p == "" {
		return "/", pathNormal
	}
	if p[0] != '/' {
		return "", pathMalformed
	}
	escaped, nonASCII := false, false
	for i := 0; i < len(p); i++ {
		switch pathClass[p[i]] {
		case classPlain:
		case classSlash:
			// "//", or a "." or ".." segment.
			if rest := p[i+1:]; rest != "" {
				switch {
				case rest[0] == '/':
					form = pathUnnormalized
				case rest[0] == '.':
					if len(rest) == 1 || rest[1] == '/' || (rest[1] == '.' && (len(rest) == 2 || rest[2] == '/')) {
						form = pathUnnormalized
					}
				}
			}
		case classPercent:
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", pathMalformed
			}
			switch b := unhex(p[i+1])<<4 | unhex(p[i+2]); {
			case b < ' ' || b == 0x7f:
				return "", pathMalformed
			case b == '/' || b == '%' || b == '?' || pathClass[b] == classUnnormal || isUnreserved(b):
				form = pathUnnormalized
			case b >= 0x80:
				nonASCII = true
			}
			escaped = true
			i += 2
		case classUnnormal:
			form = pathUnnormalized
		case classMalformed:
			return "", pathMalformed
		case classNonASCII:
			nonASCII = true
		}
	}
	if form != pathNormal {
		return "", form
	}
	match = p
	if escaped {
		dec, err := url.PathUnescape(p)
		if err != nil {
			return "", pathMalformed
		}
		match = dec
	}
	if nonASCII && !utf8.ValidString(match) {
		// Overlong or truncated UTF-8: some servers decode %C0%AE as ".".
		return "", pathUnnormalized
	}
	return match, pathNormal
}

// Byte classes of checkPath, raw or escaped.
const (
	classPlain     = iota // anything else
	classSlash            // "/"
	classPercent          // "%"
	classUnnormal         // "\", ";", "#": routers read them differently
	classMalformed        // controls, space, DEL
	classNonASCII         // >= 0x80: part of a UTF-8 sequence
)

// pathClass is the class of every byte.
var pathClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c <= ' ' || c == 0x7f:
			t[c] = classMalformed
		case c >= 0x80:
			t[c] = classNonASCII
		}
	}
	t['/'], t['%'] = classSlash, classPercent
	t['\\'], t[';'], t['#'] = classUnnormal, classUnnormal, classUnnormal
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// isUnreserved reports an RFC 3986 §2.3 unreserved character, which a
// normalising router decodes (§6.2.2.2) and a plain one does not.
func isUnreserved(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '.' || b == '_' || b == '~'
}

// readings are the ways an upstream router may read the raw path p, for a
// path not in normal form: every combination of decoding it zero, one or
// two times; dropping ";parameters" from every segment before decoding
// (Tomcat) or after; taking "\" for "/"; cutting at "#"; and then leaving
// dot segments alone, resolving them (RFC 3986 §5.2.4) or cleaning the
// path fully ("//" merged too). Only a rule with
// insecure_allow_unnormalized_paths sees them, so they may allocate; there
// are at most 108.
func readings(p string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, before := range []bool{false, true} {
		s := p
		if before {
			s = stripParams(s)
		}
		for decodes := 0; decodes <= 2; decodes++ {
			if decodes > 0 {
				d, err := url.PathUnescape(s)
				if err != nil {
					break // an upstream decoding this far refuses the path
				}
				s = d
			}
			for _, after := range []bool{false, true} {
				if before && after {
					continue
				}
				r := s
				if after {
					r = stripParams(r)
				}
				for _, bs := range []bool{false, true} {
					r := r
					if bs {
						r = strings.ReplaceAll(r, `\`, "/")
					}
					for _, hash := range []bool{false, true} {
						r := r
						if hash {
							r, _, _ = strings.Cut(r, "#")
						}
						add(r)
						add(removeDotSegments(r))
						add(cleanKeepSlash(r))
					}
				}
			}
		}
	}
	return out
}

// stripParams drops ";..." from every segment of p.
func stripParams(p string) string {
	if strings.IndexByte(p, ';') < 0 {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i], _, _ = strings.Cut(s, ";")
	}
	return strings.Join(segs, "/")
}

// removeDotSegments resolves "." and ".." as RFC 3986 §5.2.4 does, keeping
// empty segments.
func removeDotSegments(p string) string {
	segs := strings.Split(p, "/")[1:]
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// cleanKeepSlash is path.Clean keeping a trailing slash, as nginx's
// merge_slashes and dot-segment resolution do.
func cleanKeepSlash(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
