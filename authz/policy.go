package authz

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/ghbroker/ghbroker/claims"
)

// Policy is the compiled per-host access policy (the configuration's
// policy section). It is built once at start-up by CompilePolicy and is immutable afterwards,
// so one Policy serves every front door and goroutine without locking.
//
// Matching, in order:
//
//  1. Host: the rules naming the exact host (case-insensitive), then those
//     naming "*.suffix" wildcards from the most specific suffix to the least
//     (a.b.example.com tries *.b.example.com, then *.example.com).
//     "*.example.com" does not match example.com itself.
//  2. Path: among the rules of the first host pattern that has a rule
//     covering the path, the longest path prefix wins; a rule without paths
//     covers every path; prefixes match on segment boundaries (/admin covers
//     /admin, /admin/ and /admin/x, not /administrator). When no rule of a
//     host pattern covers the path, the next, less specific host pattern is
//     tried, and then policy.default.
//  3. policy.default for a host no rule covers: "deny" refuses every
//     signed-in user (403), "authenticated" admits any of them.
//
// The path is matched in a normalised form: percent-decoded once, "." and
// ".." segments resolved and "//" collapsed, so /x/../admin and /%61dmin
// both meet the /admin rule. A path that does not decode, or decodes to a
// NUL, gets the most restrictive outcome.
type Policy struct {
	exact    map[string]*hostRules // lower-case host → its rules
	wildcard map[string]*hostRules // lower-case suffix of "*.suffix" → its rules
	fallback *rule                 // policy.default
	badPath  *rule                 // the most restrictive rule, for paths that do not normalise
}

// hostRules are the rules of one host pattern, longest path prefix first;
// rules covering every path come last, in configuration order.
type hostRules struct {
	rules []*rule
}

// rule is one compiled (host pattern, path prefix) entry. Rules compiled
// from one configuration rule share their sets.
type rule struct {
	prefix         string // normalised path prefix; "" covers every path
	public         bool
	allowPreflight bool // a CORS preflight passes as on a public rule
	authenticated  bool
	groups         nameSet
	users          nameSet
	desc           string
}

// nameSet is a set of lower-case names matched ignoring ASCII case: a
// short list scanned linearly (comparing lengths first, so most entries
// are rejected at once), a map past smallSet entries.
type nameSet struct {
	list []string
	m    map[string]struct{}
}

// smallSet is the size up to which a linear scan beats hashing the key.
const smallSet = 8

func newNameSet(names []string) nameSet {
	var s nameSet
	for _, n := range names {
		n = asciiLower(strings.TrimSpace(n))
		if n != "" && !slices.Contains(s.list, n) {
			s.list = append(s.list, n)
		}
	}
	if len(s.list) > smallSet {
		s.m = make(map[string]struct{}, len(s.list))
		for _, n := range s.list {
			s.m[n] = struct{}{}
		}
	}
	return s
}

// has reports whether the set holds name, ignoring ASCII case.
func (s *nameSet) has(name string) bool {
	if s.m != nil {
		_, ok := lookupFold(s.m, name)
		return ok
	}
	for _, n := range s.list {
		if len(n) == len(name) && equalFoldLower(name, n) {
			return true
		}
	}
	return false
}

func (s *nameSet) empty() bool { return len(s.list) == 0 }

// equalFoldLower reports whether a equals the lower-case b ignoring ASCII
// case; the lengths are equal.
func equalFoldLower(a, b string) bool {
	for i := 0; i < len(b); i++ {
		if lowerByte(a[i]) != b[i] {
			return false
		}
	}
	return true
}

// Extensions narrow the policy for one route: the gRPC check's
// context_extensions allow_groups and allow_users (comma-separated), set by
// an Emissary Mapping's auth_context_extensions. When either list is
// non-empty the user must satisfy the policy and also be in one of them;
// on a public rule that means a credential is needed after all.
type Extensions struct {
	// AllowGroups are "org" or "org/team-slug" entries.
	AllowGroups []string
	// AllowUsers are GitHub logins.
	AllowUsers []string
}

// Decision is the result of Evaluate.
type Decision struct {
	// Outcome is Allow, Unauthenticated or Forbidden.
	Outcome Outcome
	// Public reports an allow by a public rule, with no credential needed.
	Public bool
	// Rule describes what the host requires, e.g. "members of acme/sre or
	// acme/dev", for the 403 page and logs.
	Rule string
}

// Descriptions of the rules that no configuration rule provides.
const (
	descPublic        = "nobody in particular (public)"
	descAuthenticated = "any signed-in user"
	descDefaultDeny   = "a policy rule naming it, and there is none"
	descBadPath       = "a well-formed request path"
)

// CompilePolicy checks a policy and turns it into lookup tables. It is
// the policy's one validator: the configuration loader reports its errors
// with file and line, and serving calls it again on the same data. Every
// mistake is reported; the error is an errors.Join of one error per
// mistake, each a *RuleError or, for the default, one wrapping
// ErrUnknownDefault.
func CompilePolicy(p PolicyConfig) (*Policy, error) {
	cp := &Policy{
		exact:    map[string]*hostRules{},
		wildcard: map[string]*hostRules{},
		badPath:  &rule{prefix: "", desc: descBadPath},
	}
	var errs []error
	switch p.Default {
	case "", "deny":
		cp.fallback = &rule{desc: descDefaultDeny}
	case "authenticated":
		cp.fallback = &rule{authenticated: true, desc: descAuthenticated}
	default:
		errs = append(errs, fmt.Errorf("authz: policy: default %w, not %q", ErrUnknownDefault, p.Default))
	}
	for i, r := range p.Rules {
		if re := checkRule(i, r); len(re) > 0 {
			errs = append(errs, re...)
			continue
		}
		rules := compileRule(r)
		for _, h := range r.Hosts {
			hp, _ := ParseHostPattern(h) // checked by checkRule
			m := cp.exact
			if hp.Wildcard {
				m = cp.wildcard
			}
			hr := m[hp.Domain]
			if hr == nil {
				hr = &hostRules{}
				m[hp.Domain] = hr
			}
			hr.rules = append(hr.rules, rules...)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, m := range []map[string]*hostRules{cp.exact, cp.wildcard} {
		for _, hr := range m {
			// Longest prefix first; stable, so that among equal prefixes
			// the first rule in the file wins.
			slices.SortStableFunc(hr.rules, func(a, b *rule) int { return len(b.prefix) - len(a.prefix) })
		}
	}
	return cp, nil
}

// compileRule compiles one checked configuration rule into one rule per
// path.
func compileRule(r RuleConfig) []*rule {
	a := r.Allow
	base := rule{
		public:         r.Public,
		allowPreflight: r.AllowPreflight,
		authenticated:  a.Authenticated,
		groups:         newNameSet(a.Groups),
		users:          newNameSet(a.Users),
		desc:           describe(r),
	}
	if len(r.Paths) == 0 {
		ru := base
		return []*rule{&ru}
	}
	out := make([]*rule, 0, len(r.Paths))
	for _, p := range r.Paths {
		np, _ := normalizePath(p) // checked by checkRule
		ru := base
		ru.prefix = strings.TrimSuffix(np, "/")
		if ru.prefix == "" {
			ru.prefix = "/" // covers every path, but is longer than no path at all
		}
		out = append(out, &ru)
	}
	return out
}

// describe says in words what a rule requires.
func describe(r RuleConfig) string {
	switch {
	case r.Public:
		return descPublic
	case r.Allow.Authenticated:
		return descAuthenticated
	}
	var parts []string
	if len(r.Allow.Groups) > 0 {
		parts = append(parts, "members of "+joinOr(r.Allow.Groups))
	}
	if len(r.Allow.Users) > 0 {
		parts = append(parts, joinOr(r.Allow.Users))
	}
	return strings.Join(parts, ", or ")
}

func joinOr(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// Evaluate decides whether the holder of c may make request r. c == nil
// means no valid credential. ext, when non-nil and non-empty, narrows the
// policy. A CORS preflight (r.Preflight) on a rule with allow_preflight is
// decided as on a public rule. Evaluate is pure and, for an already-clean
// path, allocation-free.
func (p *Policy) Evaluate(c *claims.Claims, r *Request, ext *Extensions) Decision {
	ru := p.badPath
	if np, ok := normalizePath(r.Path); ok {
		ru = p.match(r.Host, np)
	}
	narrow := ext != nil && (len(ext.AllowGroups) > 0 || len(ext.AllowUsers) > 0)
	switch {
	case (ru.public || (r.Preflight && ru.allowPreflight)) && !narrow:
		return Decision{Outcome: Allow, Public: true, Rule: ru.desc}
	case c == nil:
		return Decision{Outcome: Unauthenticated, Rule: ru.desc}
	case !ru.public && !ru.admits(c):
		return Decision{Outcome: Forbidden, Rule: ru.desc}
	case narrow && !ext.admits(c):
		return Decision{Outcome: Forbidden, Rule: ext.describe(ru)}
	}
	return Decision{Outcome: Allow, Rule: ru.desc}
}

// match finds the rule for a host and a normalised path.
func (p *Policy) match(host, np string) *rule {
	if hr, ok := lookupFold(p.exact, host); ok {
		if ru := hr.match(np); ru != nil {
			return ru
		}
	}
	for i := 0; i < len(host); i++ {
		if host[i] != '.' {
			continue
		}
		if hr, ok := lookupFold(p.wildcard, host[i+1:]); ok {
			if ru := hr.match(np); ru != nil {
				return ru
			}
		}
	}
	return p.fallback
}

func (hr *hostRules) match(np string) *rule {
	for _, ru := range hr.rules {
		if ru.covers(np) {
			return ru
		}
	}
	return nil
}

// covers reports whether the rule's prefix covers np on a segment boundary.
func (ru *rule) covers(np string) bool {
	switch ru.prefix {
	case "", "/":
		return true
	}
	return strings.HasPrefix(np, ru.prefix) && (len(np) == len(ru.prefix) || np[len(ru.prefix)] == '/')
}

// admits reports whether the rule lets c in.
func (ru *rule) admits(c *claims.Claims) bool {
	if ru.authenticated {
		return true
	}
	if c.PreferredUsername != "" && ru.users.has(c.PreferredUsername) {
		return true
	}
	if ru.groups.empty() {
		return false
	}
	for _, g := range c.Groups {
		if ru.groups.has(g) {
			return true
		}
	}
	return false
}

// KnowsHost reports whether some rule names host, exactly or through a
// wildcard. Only such hosts may appear in a login redirect's rd.
func (p *Policy) KnowsHost(host string) bool {
	if host == "" {
		return false
	}
	if _, ok := lookupFold(p.exact, host); ok {
		return true
	}
	for i := 0; i < len(host); i++ {
		if host[i] == '.' {
			if _, ok := lookupFold(p.wildcard, host[i+1:]); ok {
				return true
			}
		}
	}
	return false
}

// admits reports whether c is in one of the extensions' lists.
func (e *Extensions) admits(c *claims.Claims) bool {
	for _, u := range e.AllowUsers {
		if c.PreferredUsername != "" && strings.EqualFold(strings.TrimSpace(u), c.PreferredUsername) {
			return true
		}
	}
	for _, want := range e.AllowGroups {
		want = strings.TrimSpace(want)
		for _, g := range c.Groups {
			if strings.EqualFold(want, g) {
				return true
			}
		}
	}
	return false
}

// describe says what the host requires once narrowed by e. It allocates,
// but only on a refusal.
func (e *Extensions) describe(ru *rule) string {
	r := RuleConfig{Allow: AllowConfig{Groups: e.AllowGroups, Users: e.AllowUsers}}
	if ru.public {
		return describe(r) + " (for this route)"
	}
	return ru.desc + ", and for this route " + describe(r)
}

// normalizePath returns the form of p that rules match against: decoded
// once, dot segments resolved, "//" collapsed. An already-clean path is
// returned as is, without allocating. ok is false for a path that does not
// start with "/", does not decode, or holds a NUL.
func normalizePath(p string) (string, bool) {
	if p == "" {
		return "/", true
	}
	if p[0] != '/' {
		return "", false
	}
	if cleanPath(p) {
		return p, true
	}
	dec, err := url.PathUnescape(p)
	if err != nil || strings.IndexByte(dec, 0) >= 0 {
		return "", false
	}
	return path.Clean(dec), true
}

// cleanPath reports whether p (starting with "/") needs no normalising: no
// escapes, no NUL, no empty, "." or ".." segment except a trailing slash.
func cleanPath(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%', 0:
			return false
		case '/':
			rest := p[i+1:]
			switch {
			case rest == "":
			case rest[0] == '/':
				return false
			case rest[0] == '.':
				if len(rest) == 1 || rest[1] == '/' || (rest[1] == '.' && (len(rest) == 2 || rest[2] == '/')) {
					return false
				}
			}
		}
	}
	return true
}
