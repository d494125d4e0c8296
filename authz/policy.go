package authz

import (
	"errors"
	"fmt"
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
// One meaning per path: the policy decides on the path the upstream will
// see, so a path that is not already in normal form (see checkPath: dot
// segments, "//", "\", ";", "#", an escaped "/", "\", ";", "%", "?", "#" or
// unreserved character) is refused before any rule is consulted, with or
// without a credential (Decision.BadPath). A path in normal form is
// matched with its remaining escapes decoded. Paths match case-sensitively
// unless the rule says case_insensitive. A rule with
// insecure_allow_unnormalized_paths decides a path not in normal form too,
// but only when every reading of it an upstream might make (see readings)
// falls under that same rule.
type Policy struct {
	exact    map[string]*hostRules // lower-case host → its rules
	wildcard map[string]*hostRules // lower-case suffix of "*.suffix" → its rules
	fallback *rule                 // policy.default
	badPath  *rule                 // the refusal of a path not in normal form
	// unnormalized reports a rule with insecure_allow_unnormalized_paths:
	// without one, a path not in normal form is refused at once.
	unnormalized bool
}

// hostRules are the rules of one host pattern, longest path prefix first;
// rules covering every path come last, in configuration order.
type hostRules struct {
	rules []*rule
	// only is the rule every path of the host meets, when one
	// configuration rule covers every path and no other rule names the
	// pattern; nil otherwise.
	only *rule
}

// rule is one compiled (host pattern, path prefix) entry. Rules compiled
// from one configuration rule share their sets.
type rule struct {
	id             int    // index of the configuration rule; -1 for rules of our own
	prefix         string // normalised path prefix; "" covers every path
	fold           bool   // case_insensitive: prefix segments compare ignoring case
	unnormalized   bool   // insecure_allow_unnormalized_paths
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
	// BadPath reports a Forbidden outcome because the path is not in
	// normal form (or not a path at all): refused whoever asks, with or
	// without a credential.
	BadPath bool
}

// Descriptions of the rules that no configuration rule provides.
const (
	descPublic        = "nobody in particular (public)"
	descAuthenticated = "any signed-in user"
	descDefaultDeny   = "a policy rule naming it, and there is none"
	descBadPath       = `a request path in normal form (no "." or ".." segments, "//", "\", ";" or "#", and no escaped "/", "\", ";", "%", "?", "#" or unreserved characters)`
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
		badPath:  &rule{id: -1, desc: descBadPath},
	}
	var errs []error
	switch p.Default {
	case "", "deny":
		cp.fallback = &rule{id: -1, desc: descDefaultDeny}
	case "authenticated":
		cp.fallback = &rule{id: -1, authenticated: true, desc: descAuthenticated}
	default:
		errs = append(errs, fmt.Errorf("authz: policy: default %w, not %q", ErrUnknownDefault, p.Default))
	}
	for i, r := range p.Rules {
		if re := checkRule(i, r); len(re) > 0 {
			errs = append(errs, re...)
			continue
		}
		rules := compileRule(i, r)
		cp.unnormalized = cp.unnormalized || r.InsecureAllowUnnormalizedPaths
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
			hr.only = hr.rules[0]
			for _, ru := range hr.rules {
				if ru.id != hr.only.id {
					hr.only = nil
					break
				}
			}
			if last := hr.rules[len(hr.rules)-1]; hr.only != nil && last.prefix != "" && last.prefix != "/" {
				hr.only = nil
			}
		}
	}
	return cp, nil
}

// compileRule compiles checked configuration rule i into one rule per
// path.
func compileRule(i int, r RuleConfig) []*rule {
	a := r.Allow
	base := rule{
		id:             i,
		fold:           r.CaseInsensitive,
		unnormalized:   r.InsecureAllowUnnormalizedPaths,
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
		np, _ := checkPath(p) // checked by checkRule
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
// decided as on a public rule. A path not in normal form is Forbidden with
// BadPath, before any rule (see Policy). Evaluate is pure and, for a path
// without escapes, allocation-free.
func (p *Policy) Evaluate(c *claims.Claims, r *Request, ext *Extensions) Decision {
	ru := p.ruleFor(r.Host, r.Path)
	if ru == p.badPath {
		return Decision{Outcome: Forbidden, Rule: ru.desc, BadPath: true}
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

// ruleFor finds the rule for a host and a raw path: badPath for a path
// not in normal form, unless every reading of it falls under one rule
// with insecure_allow_unnormalized_paths.
func (p *Policy) ruleFor(host, raw string) *rule {
	np, form := checkPath(raw)
	switch {
	case form == pathNormal:
		return p.match(host, np)
	case form == pathMalformed || !p.unnormalized || len(raw) > maxUnnormalizedPath:
		return p.badPath
	}
	if hr := p.hostRules(host); hr != nil && hr.only != nil {
		// Every reading meets the same rule: no need to read them.
		if hr.only.unnormalized {
			return hr.only
		}
		return p.badPath
	}
	var found *rule
	for _, rd := range readings(raw) {
		ru := p.match(host, rd)
		if found != nil && ru.id != found.id {
			return p.badPath
		}
		found = ru
	}
	if found == nil || !found.unnormalized {
		return p.badPath
	}
	return found
}

// maxUnnormalizedPath bounds the paths that rules with
// insecure_allow_unnormalized_paths decide: reading a path every way an
// upstream might costs about a hundred times its length.
const maxUnnormalizedPath = 1024

// hostRules returns the rules of the most specific host pattern that
// names host, nil when none does.
func (p *Policy) hostRules(host string) *hostRules {
	if hr, ok := lookupFold(p.exact, host); ok {
		return hr
	}
	for i := 0; i < len(host); i++ {
		if host[i] == '.' {
			if hr, ok := lookupFold(p.wildcard, host[i+1:]); ok {
				return hr
			}
		}
	}
	return nil
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

// covers reports whether the rule's prefix covers np on a segment
// boundary, ignoring case (Unicode simple folding, segment by segment) for
// a case_insensitive rule.
func (ru *rule) covers(np string) bool {
	switch ru.prefix {
	case "", "/":
		return true
	}
	if ru.fold {
		return hasPrefixFold(np, ru.prefix)
	}
	return strings.HasPrefix(np, ru.prefix) && (len(np) == len(ru.prefix) || np[len(ru.prefix)] == '/')
}

// hasPrefixFold reports whether the segments of prefix (which starts with
// "/" and does not end with one) begin path, ignoring case.
func hasPrefixFold(path, prefix string) bool {
	for prefix != "" {
		if path == "" || path[0] != '/' {
			return false
		}
		var ps, qs string
		ps, path = cutSegment(path[1:])
		qs, prefix = cutSegment(prefix[1:])
		if !strings.EqualFold(ps, qs) {
			return false
		}
	}
	return path == "" || path[0] == '/'
}

// cutSegment splits s at its first "/", which stays with the rest.
func cutSegment(s string) (seg, rest string) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
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
