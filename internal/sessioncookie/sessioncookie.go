// Package sessioncookie is the wire format of the SSO cookie: the session
// token in one cookie when it fits, split into numbered chunks when it does
// not. The broker writes it and authz reads it; this leaf package is the
// one place both agree on.
//
// A token that fits is stored as NAME=token. A larger one is stored as
// NAME.0, NAME.1, … in order; readers join contiguous chunks from 0. Any
// tampering (a missing, reordered or stale chunk) yields a string that is
// not a valid JWS, which the verifier refuses: the format needs no
// integrity of its own.
package sessioncookie

import (
	"net/http"
	"strconv"
	"strings"
)

// MaxChunkValue is the longest value put in one cookie. Browsers accept
// 4,096 bytes for name, value and attributes together (RFC 6265 §6.1);
// this leaves room for the attributes.
const MaxChunkValue = 3800

// MaxChunks bounds how many chunks are written and read (a 60 KB token).
const MaxChunks = 16

// Attrs are the attributes of every cookie written.
type Attrs struct {
	Domain string
	Secure bool
	MaxAge int
}

func (a Attrs) cookie(name, value string) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/", Domain: a.Domain, MaxAge: a.MaxAge,
		Secure: a.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
}

// ChunkName is the name of chunk i.
func ChunkName(name string, i int) string { return name + "." + strconv.Itoa(i) }

// Split returns the cookies that carry token, plus expired cookies that
// clear every chunk present in r that the new set does not overwrite (so
// that no stale chunk joins the new token). r may be nil.
func Split(r *http.Request, name, token string, a Attrs) []*http.Cookie {
	var out []*http.Cookie
	written := map[string]bool{}
	if len(token) <= MaxChunkValue {
		out = append(out, a.cookie(name, token))
		written[name] = true
	} else {
		for i := 0; len(token) > 0 && i < MaxChunks; i++ {
			n := min(MaxChunkValue, len(token))
			out = append(out, a.cookie(ChunkName(name, i), token[:n]))
			written[ChunkName(name, i)] = true
			token = token[n:]
		}
	}
	return append(out, clearStale(r, name, written, a)...)
}

// Clear returns expired cookies for the single cookie and every chunk
// present in r (or every possible chunk when r is nil).
func Clear(r *http.Request, name string, a Attrs) []*http.Cookie {
	return clearStale(r, name, map[string]bool{}, a)
}

func clearStale(r *http.Request, name string, keep map[string]bool, a Attrs) []*http.Cookie {
	a.MaxAge = -1
	var out []*http.Cookie
	del := func(n string) {
		if !keep[n] {
			keep[n] = true
			out = append(out, a.cookie(n, ""))
		}
	}
	if r == nil {
		del(name)
		for i := range MaxChunks {
			del(ChunkName(name, i))
		}
		return out
	}
	// Only names that can exist — NAME and NAME.0 … NAME.(MaxChunks-1) —
	// are expired, each at most once: a request stuffed with thousands of
	// look-alike cookies gets at most MaxChunks+1 Set-Cookie lines back.
	for _, c := range r.Cookies() {
		if c.Name == name {
			del(name)
			continue
		}
		rest, ok := strings.CutPrefix(c.Name, name+".")
		if i, err := strconv.Atoi(rest); ok && err == nil && i >= 0 && i < MaxChunks && ChunkName(name, i) == c.Name {
			del(c.Name)
		}
	}
	return out
}

// MaxCandidates is the most candidates Candidates returns: four NAME
// values and the join of the chunks.
const MaxCandidates = maxSingle + 1

// maxSingle bounds the NAME values read.
const maxSingle = 4

// Candidates returns the session tokens carried under name by the Cookie
// header lines cookies (http.Header["Cookie"], or the values of a gRPC
// check's "cookie" header): each value of a NAME cookie (a browser may send
// several when cookies of the same name are set on different domains),
// then the join of NAME.0, NAME.1, … Values are returned at most four; the
// caller verifies each and uses the first valid one.
func Candidates(cookies []string, name string) []string {
	return AppendCandidates(nil, cookies, name)
}

// AppendCandidates appends Candidates to dst and returns it: with a dst of
// capacity MaxCandidates it allocates only for chunked tokens.
func AppendCandidates(dst []string, cookies []string, name string) []string {
	single := dst
	start := len(dst)
	var chunks [MaxChunks]string
	n := 0
	for _, line := range cookies {
		for part := range strings.SplitSeq(line, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || !strings.HasPrefix(k, name) {
				continue
			}
			v = strings.Trim(v, `"`)
			switch rest := k[len(name):]; {
			case rest == "":
				if len(single)-start < maxSingle && v != "" {
					single = append(single, v)
				}
			case strings.HasPrefix(rest, "."):
				i, err := strconv.Atoi(rest[1:])
				if err != nil || i < 0 || i >= MaxChunks || chunks[i] != "" {
					continue // unknown, out of range, or a duplicate chunk: ignore
				}
				chunks[i] = v
				n = max(n, i+1)
			}
		}
	}
	if n > 0 {
		var b strings.Builder
		for i := range n {
			if chunks[i] == "" {
				break // a missing chunk: the join is incomplete
			}
			b.WriteString(chunks[i])
		}
		if b.Len() > 0 {
			single = append(single, b.String())
		}
	}
	return single
}
