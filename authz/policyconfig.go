package authz

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// PolicyConfig is the access policy as data: the policy section of the
// configuration file, whose keys are the yaml tags. CompilePolicy is the
// one place it is validated, so what a configuration check accepts is what
// a running check enforces.
type PolicyConfig struct {
	// Default applies to hosts no rule names: "deny" refuses every
	// signed-in user, "authenticated" admits any of them. Empty means
	// "deny".
	Default string `yaml:"default"`
	// Rules match by host, then by the longest path prefix (see Policy).
	Rules []RuleConfig `yaml:"rules"`
}

// RuleConfig is one rule of a PolicyConfig.
type RuleConfig struct {
	// Hosts are host patterns, each an exact host name or "*." and a
	// domain (see ParseHostPattern). At least one.
	Hosts []string `yaml:"hosts"`
	// Paths are path prefixes starting with "/", matched on segment
	// boundaries; empty means every path. Each must be in normal form
	// (see Policy), written as the upstream sees it.
	Paths []string `yaml:"paths"`
	// CaseInsensitive matches Paths ignoring case, for an upstream that
	// routes /ADMIN where it routes /admin (IIS, case-insensitive
	// routers): without it, /ADMIN is not under a rule for /admin. Set it
	// on every rule of such an upstream's host.
	CaseInsensitive bool `yaml:"case_insensitive"`
	// InsecureAllowUnnormalizedPaths lets the rule decide requests whose
	// path is not in normal form (dot segments, "//", ";", "\", escaped
	// "/" or "%"…), which are otherwise refused before any rule: for an
	// upstream that needs them, such as encoded slashes in
	// /api/v4/projects/group%2Fproject. Such a path is decided by this
	// rule only when every reading of it that the check knows of (raw,
	// decoded once or twice, dot segments resolved, "\" as "/", ";"
	// parameters dropped) falls under this same rule; else it is still
	// refused. It MUST NOT be set for an upstream that reads paths in yet
	// another way, since whatever it makes of the path is decided by this
	// rule alone; prefer normalising at the gateway (docs/authz-check.md).
	InsecureAllowUnnormalizedPaths bool `yaml:"insecure_allow_unnormalized_paths"`
	// Public lets anyone through without a credential. A public rule has
	// no Allow.
	Public bool `yaml:"public"`
	// AllowPreflight lets CORS preflight requests (OPTIONS with Origin and
	// Access-Control-Request-Method) to the rule's hosts and paths through
	// without a credential, since browsers never send one on a preflight.
	AllowPreflight bool `yaml:"allow_preflight"`
	// Allow lists who may pass. A rule that is not public needs at least
	// one entry or Authenticated.
	Allow AllowConfig `yaml:"allow"`
}

// AllowConfig lists who passes a rule: anyone in one of the groups or
// users, or any signed-in user when Authenticated is set.
type AllowConfig struct {
	// Groups are "org" or "org/team-slug" entries, the vocabulary of the
	// groups claim, matched ignoring ASCII case.
	Groups []string `yaml:"groups"`
	// Users are GitHub logins, matched ignoring ASCII case.
	Users []string `yaml:"users"`
	// Authenticated lets any signed-in user through.
	Authenticated bool `yaml:"authenticated"`
}

// The mistakes CompilePolicy reports, one sentinel per check; match them
// with errors.Is. A bad host pattern is a *HostPatternError.
var (
	ErrUnknownDefault  = errors.New(`must be "deny" or "authenticated"`)
	ErrNoHosts         = errors.New(`names no hosts; every rule needs hosts: [name.example.com] or ["*.example.com"]`)
	ErrPublicWithAllow = errors.New("is public and also has allow; a public rule lets everyone in, so remove one")
	ErrNobodyAllowed   = errors.New("lets nobody in: give it allow (groups, users or authenticated: true) or public: true")
	ErrPath            = errors.New("is not a path prefix")
	ErrGroup           = errors.New(`must be "org" or "org/team-slug"`)
)

// RuleError is a mistake in one rule of a PolicyConfig, located with the
// configuration's own key names so that a loader can point at the line:
// the rule Rules[Rule], its key Field, and the entry Index of that list.
type RuleError struct {
	// Rule is the index of the rule in PolicyConfig.Rules.
	Rule int
	// Field is the key within the rule that is wrong: "hosts", "paths",
	// "public" or "allow.groups"; "" means the rule as a whole.
	Field string
	// Index is the entry of the Field list that is wrong, or -1 when the
	// mistake is not in one entry.
	Index int
	// Err says what is wrong: one of the Err sentinels above (possibly
	// wrapped) or a *HostPatternError.
	Err error
}

// Path is where the mistake is, relative to the policy section:
// "rules[2].hosts[0]", "rules[2].allow.groups[1]", "rules[2]".
func (e *RuleError) Path() string {
	p := "rules[" + strconv.Itoa(e.Rule) + "]"
	if e.Field != "" {
		p += "." + e.Field
	}
	if e.Index >= 0 {
		p += "[" + strconv.Itoa(e.Index) + "]"
	}
	return p
}

func (e *RuleError) Error() string { return "authz: policy: " + e.Path() + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *RuleError) Unwrap() error { return e.Err }

// HostPatternError says why ParseHostPattern refused a pattern.
type HostPatternError struct {
	// Pattern is the pattern as written.
	Pattern string
	// Reason says what is wrong and, where it can, what to write instead.
	Reason string
}

func (e *HostPatternError) Error() string {
	return fmt.Sprintf("%q is not a host name or \"*.\" followed by a domain: %s", e.Pattern, e.Reason)
}

// HostPattern is a parsed policy host: an exact host name, or with
// Wildcard every name under Domain (but not Domain itself).
type HostPattern struct {
	// Domain is the host name, in lower case; for a wildcard, the part
	// after "*.".
	Domain string
	// Wildcard reports a "*.domain" pattern.
	Wildcard bool
}

// String returns the pattern in its normal form.
func (h HostPattern) String() string {
	if h.Wildcard {
		return "*." + h.Domain
	}
	return h.Domain
}

// maxLabelLen is the longest DNS label (RFC 1035 §2.3.4).
const maxLabelLen = 63

// ParseHostPattern parses a policy host pattern. A pattern is a DNS host
// name of labels made of ASCII letters, digits and hyphens, no label
// starting or ending with a hyphen (RFC 1123 §2.1), optionally preceded by
// "*." as its whole leftmost label. Host names are case-insensitive, so
// upper case is accepted and folded to lower case. Refused, each with a
// Reason saying what to write instead: an internationalised name written
// in Unicode (write its A-label, "xn--…", which is what browsers send; the
// A-label itself is accepted), a trailing dot, a port, "_", "%", spaces,
// and "*" anywhere but as the whole first label. Requests carrying such a
// host are refused before the policy is consulted, so a rule naming one
// could never match.
func ParseHostPattern(s string) (HostPattern, error) {
	fail := func(format string, args ...any) (HostPattern, error) {
		return HostPattern{}, &HostPatternError{Pattern: s, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return fail("it is empty")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r > unicode.MaxASCII }) {
		if !utf8.ValidString(s) {
			return fail("it is not ASCII (nor even UTF-8)")
		}
		if a, err := idna.Lookup.ToASCII(strings.TrimPrefix(s, "*.")); err == nil && a != "" {
			if strings.HasPrefix(s, "*.") {
				a = "*." + a
			}
			return fail("write an internationalised name in its A-label (punycode) form, %s", a)
		}
		return fail("it is not ASCII; write an internationalised name in its A-label (punycode, xn--…) form")
	}
	if strings.ContainsFunc(s, unicode.IsSpace) {
		return fail("spaces are not allowed")
	}
	if strings.Contains(s, "/") {
		return fail("write the host name alone, without a scheme or path")
	}
	if host, _, ok := strings.Cut(s, ":"); ok {
		return fail("hosts match without the port; write %s", host)
	}
	var h HostPattern
	rest := s
	if d, ok := strings.CutPrefix(s, "*."); ok {
		h.Wildcard, rest = true, d
		if rest == "" {
			return fail(`"*." must be followed by a domain, as in *.example.com`)
		}
	}
	switch {
	case rest == "*":
		return fail("a lone * would match every host; policy.default says what hosts no rule names get")
	case strings.Contains(rest, "*"):
		return fail(`"*" is allowed only as the whole leftmost label, as in *.example.com`)
	case strings.HasSuffix(rest, "."):
		return fail("a trailing dot is not allowed; write %s", strings.TrimRight(s, "."))
	case len(rest) > maxHostLen:
		return fail("it is longer than %d characters", maxHostLen)
	}
	for label := range strings.SplitSeq(rest, ".") {
		if r := labelProblem(label); r != "" {
			return fail("%s", r)
		}
	}
	h.Domain = asciiLower(rest)
	return h, nil
}

// labelProblem says what is wrong with one DNS label, or "" when nothing is.
func labelProblem(l string) string {
	switch {
	case l == "":
		return "it has an empty label (a leading dot or two dots in a row)"
	case len(l) > maxLabelLen:
		return fmt.Sprintf("the label %.20s… is longer than %d characters", l, maxLabelLen)
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Sprintf("the label %q starts or ends with a hyphen", l)
	}
	for i := 0; i < len(l); i++ {
		switch c := l[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
		case c == '_':
			return `"_" is not allowed in a host name (letters, digits and hyphens only, RFC 1123)`
		case c == '%':
			return `"%" is not allowed: write the host name itself, not percent-encoded`
		default:
			return fmt.Sprintf("%q is not allowed in a host name (letters, digits and hyphens only, RFC 1123)", c)
		}
	}
	return ""
}

// validGroup accepts "org" or "org/team-slug".
func validGroup(g string) bool {
	org, team, hasTeam := strings.Cut(g, "/")
	return org != "" && !strings.ContainsAny(g, " :") && (!hasTeam || (team != "" && !strings.Contains(team, "/")))
}

// checkRule reports every mistake in rule i, nil when there is none.
func checkRule(i int, r RuleConfig) []error {
	var errs []error
	add := func(field string, index int, err error) {
		errs = append(errs, &RuleError{Rule: i, Field: field, Index: index, Err: err})
	}
	if len(r.Hosts) == 0 {
		add("hosts", -1, ErrNoHosts)
	}
	for j, h := range r.Hosts {
		if _, err := ParseHostPattern(h); err != nil {
			add("hosts", j, err)
		}
	}
	for j, p := range r.Paths {
		if !strings.HasPrefix(p, "/") {
			add("paths", j, fmt.Errorf("%q %w: it must start with /", p, ErrPath))
		} else {
			switch _, form := checkPath(p); form {
			case pathMalformed:
				add("paths", j, fmt.Errorf("%q %w: it does not decode, or holds a control character", p, ErrPath))
			case pathUnnormalized:
				add("paths", j, fmt.Errorf(`%q %w in normal form: write it as the upstream routes it, without "." or ".." segments, "//", "\", ";", "#" or escaped "/", "\", ";", "%%", "?", "#" or unreserved characters`, p, ErrPath))
			}
		}
	}
	a := r.Allow
	hasAllow := len(a.Groups) > 0 || len(a.Users) > 0 || a.Authenticated
	switch {
	case r.Public && hasAllow:
		add("public", -1, ErrPublicWithAllow)
	case !r.Public && !hasAllow:
		add("", -1, ErrNobodyAllowed)
	}
	for j, g := range a.Groups {
		if !validGroup(g) {
			add("allow.groups", j, fmt.Errorf("%w, not %q", ErrGroup, g))
		}
	}
	return errs
}
