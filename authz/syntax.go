package authz

import "strings"

// The syntax of what gateways send, checked without allocating: host
// names and ports, request targets, methods, header token lists, and ASCII
// case folding (host names, GitHub logins and team slugs are ASCII).

// sameHost reports whether two "host[:port]" values name the same host:
// equal names ignoring case and a trailing dot, and equal ports when both
// have one. A value that is not a valid host agrees with nothing.
func sameHost(a, b string) bool {
	ha, pa, okA := splitHostPort(a)
	hb, pb, okB := splitHostPort(b)
	return okA && okB && strings.EqualFold(ha, hb) && (pa == "" || pb == "" || pa == pb)
}

// splitHostPort splits "host[:port]" as parseHost does, without
// allocating: the host keeps its case, loses a trailing dot.
func splitHostPort(hostport string) (host, port string, ok bool) {
	host = hostport
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i+1:]
		if !validPort(port) {
			return "", "", false
		}
	}
	host = strings.TrimSuffix(host, ".")
	return host, port, validHostName(host)
}

// hasToken reports whether the comma-separated header values name the
// lower-case token, ignoring ASCII case and spaces (RFC 9110 §5.6.1),
// without allocating.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for len(v) > 0 {
			var item string
			item, v, _ = strings.Cut(v, ",")
			item = strings.Trim(item, " \t")
			if len(item) == len(token) && equalFoldLower(item, token) {
				return true
			}
		}
	}
	return false
}

// containsFold reports whether s contains the lower-case ASCII needle,
// ignoring ASCII case, without allocating.
func containsFold(s, needle string) bool {
	for i := 0; i+len(needle) <= len(s); i++ {
		match := true
		for j := 0; j < len(needle); j++ {
			if lowerByte(s[i+j]) != needle[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// validHostName accepts a DNS name of letters, digits, dots and hyphens
// with no empty label, in one pass (it runs on every check).
func validHostName(h string) bool {
	ok, _ := scanHostName(h)
	return ok
}

// scanHostName is validHostName, reporting too whether h has an upper-case
// letter (so that the check lower-cases it only then) from the same pass.
func scanHostName(h string) (ok, upper bool) {
	if h == "" || len(h) > maxHostLen || h[0] == '.' || h[len(h)-1] == '.' {
		return false, false
	}
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case 'A' <= c && c <= 'Z':
			upper = true
		case c == '.':
			if h[i-1] == '.' { // i > 0: h[0] is not a dot
				return false, false
			}
		default:
			return false, false
		}
	}
	return true, upper
}

// validURIChars rejects control characters and spaces, which no request
// target on the wire carries.
func validURIChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHostChars accepts letters, digits, dots and hyphens only.
func validHostChars(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// validMethod accepts an RFC 9110 token of at most 32 bytes.
func validMethod(m string) bool {
	if m == "" || len(m) > maxMethodLen {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// lookupFold looks s up in a map keyed by ASCII-lower-case strings without
// allocating for keys up to 256 bytes.
func lookupFold[V any](m map[string]V, s string) (V, bool) {
	if !hasUpper(s) {
		v, ok := m[s]
		return v, ok
	}
	var buf [256]byte
	if len(s) > len(buf) {
		v, ok := m[asciiLower(s)]
		return v, ok
	}
	b := buf[:len(s)]
	for i := range len(s) {
		b[i] = lowerByte(s[i])
	}
	v, ok := m[string(b)]
	return v, ok
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// asciiLower lower-cases ASCII letters only: GitHub logins, org and team
// slugs and host names are ASCII, and folding the same way on both sides
// keeps lookups consistent.
func asciiLower(s string) string {
	if !hasUpper(s) {
		return s
	}
	b := []byte(s)
	for i := range b {
		b[i] = lowerByte(b[i])
	}
	return string(b)
}
