package config

import (
	"errors"
	"fmt"
	"github.com/ghbroker/ghbroker/broker/oidc"
	"github.com/ghbroker/ghbroker/broker/session"
	"net/url"
	"strings"
	"time"

	"github.com/ghbroker/ghbroker/authz"
	"github.com/ghbroker/ghbroker/claims"
)

// DomainCovers reports whether host is covered by domain: ".example.com"
// covers example.com and every subdomain; "example.com" only itself.
func DomainCovers(domain, host string) bool {
	domain, host = strings.ToLower(domain), strings.ToLower(host)
	if d, ok := strings.CutPrefix(domain, "."); ok {
		return host == d || strings.HasSuffix(host, "."+d)
	}
	return host == domain
}

func issuerHost(c *Config) string {
	u, err := url.Parse(c.Issuer)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func (v *validator) session(c *Config) {
	s := &c.Session
	if s.TTL.D() <= 0 || s.MaxAge.D() <= 0 {
		v.fail("session.ttl", "session.ttl and session.max_age must be positive durations")
	}
	if s.TTL.D() > s.MaxAge.D() {
		v.fail("session.ttl", "session.ttl (%s) must not be longer than session.max_age (%s)", s.TTL.D(), s.MaxAge.D())
	}
	if strings.ContainsAny(s.CookieName, " ;,=\t") || s.CookieName == "" {
		v.fail("session.cookie_name", "session.cookie_name %q is not a valid cookie name", s.CookieName)
	}
	host := issuerHost(c)
	if s.CookieDomain != "" {
		d := strings.TrimPrefix(s.CookieDomain, ".")
		switch {
		case !strings.HasPrefix(s.CookieDomain, ".") && d != host:
			v.fail("session.cookie_domain", "session.cookie_domain %q should start with a dot (e.g. %q) to cover every subdomain", s.CookieDomain, "."+s.CookieDomain)
		case !strings.Contains(d, ".") && d != "localhost":
			v.fail("session.cookie_domain", "session.cookie_domain %q is a top-level domain; browsers refuse cookies there", s.CookieDomain)
		case host != "" && !DomainCovers(s.CookieDomain, host):
			v.fail("session.cookie_domain", "session.cookie_domain %q does not cover the issuer's host %s, so the browser would never send the session cookie back to the broker", s.CookieDomain, host)
		}
	}
	if s.RecheckEvery.D() < 10*time.Second {
		v.fail("session.recheck_every", "session.recheck_every must be at least 10s, not %s", s.RecheckEvery.D())
	}
	if s.HSTSMaxAge.D() < 0 {
		v.fail("session.hsts_max_age", "session.hsts_max_age must not be negative (0s sends no Strict-Transport-Security)")
	}
	if raw := v.secret("session", "", s.SealKeyEnv, s.SealKeyFile, SealKeyEnvName, "seal_key"); raw != "" {
		key, err := session.ParseSealKey(raw)
		if err != nil {
			v.fail("session.seal_key_file", "session: %v", err)
		}
		s.SealKey = key
	}
	for i, d := range s.AllowedRedirectDomains {
		if d == "" || strings.ContainsAny(d, "/:@*") {
			v.fail(fmt.Sprintf("session.allowed_redirect_domains[%d]", i),
				"session.allowed_redirect_domains[%d] must be a host (grafana.example.com) or a domain with a leading dot (.example.com), not %q", i, d)
		}
	}
}

func (v *validator) clients(c *Config) {
	ids := map[string]int{}
	for i := range c.Clients {
		cl := &c.Clients[i]
		key := fmt.Sprintf("clients[%d]", i)
		if cl.ID == "" {
			v.fail(key, "%s needs an id", key)
		} else if cl.ID == claims.GatewayAudience(c.Issuer) {
			v.fail(key+".id", "client id %q is the audience that marks gateway credentials; choose another id", cl.ID)
		} else if j, dup := ids[cl.ID]; dup {
			v.fail(key+".id", "client id %q is used twice (clients[%d] and %s)", cl.ID, j, key)
		}
		ids[cl.ID] = i
		before := len(v.problems)
		cl.Secret = v.secret(key, cl.Secret, cl.SecretEnv, cl.SecretFile, "", "secret")
		secretFailed := len(v.problems) > before
		switch {
		case cl.Public && cl.Secret != "":
			v.fail(key+".public", "client %q is public (PKCE, no secret) but has a secret; remove one", cl.ID)
		case !cl.Public && cl.Secret == "" && !secretFailed:
			v.fail(key, "client %q needs a secret (secret_env, secret_file or secret), or public: true for a client that cannot keep one", cl.ID)
		case !cl.Public && !secretFailed:
			if err := oidc.CheckClientSecret(cl.Secret); err != nil {
				src := key + ".secret"
				switch {
				case cl.SecretEnv != "":
					src = key + ".secret_env"
				case cl.SecretFile != "":
					src = key + ".secret_file"
				}
				v.fail(src, "client %q: %v", cl.ID, err)
			}
		}
		if d := cl.TokenTTL.D(); d < time.Minute || d > MaxTokenTTL {
			v.fail(key+".token_ttl", "client %q: token_ttl must be between 1m and %s, not %s", cl.ID, MaxTokenTTL, d)
		}
		codeFlow := v.grantTypes(key, cl)
		if len(cl.RedirectURIs) == 0 && codeFlow {
			v.fail(key+".redirect_uris", "client %q needs at least one redirect_uris entry, e.g. https://grafana.example.com/login/generic_oauth", cl.ID)
		}
		for j, u := range cl.RedirectURIs {
			v.clientURI(fmt.Sprintf("%s.redirect_uris[%d]", key, j), u)
		}
		for j, u := range cl.PostLogoutRedirectURIs {
			v.clientURI(fmt.Sprintf("%s.post_logout_redirect_uris[%d]", key, j), u)
		}
		if u := cl.BackchannelLogoutURI; u != "" {
			if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") {
				v.fail(key+".backchannel_logout_uri", "%s.backchannel_logout_uri must be an https URL, not %q", key, u)
			} else {
				v.clientURI(key+".backchannel_logout_uri", u)
			}
		}
	}
}

// grantTypes checks clients[].grant_types, reads the device-code URN as
// device_code, and reports whether the client uses the code flow (and so
// needs redirect URIs).
func (v *validator) grantTypes(key string, cl *Client) (codeFlow bool) {
	if len(cl.GrantTypes) == 0 {
		return true
	}
	first := false
	for j, g := range cl.GrantTypes {
		switch g {
		case "urn:ietf:params:oauth:grant-type:device_code":
			cl.GrantTypes[j] = "device_code"
			first = true
		case "device_code":
			first = true
		case "authorization_code":
			first, codeFlow = true, true
		case "refresh_token":
		default:
			v.fail(fmt.Sprintf("%s.grant_types[%d]", key, j), "client %q: unknown grant type %q; use authorization_code, refresh_token or device_code", cl.ID, g)
		}
	}
	if !first {
		v.fail(key+".grant_types", "client %q: grant_types needs authorization_code or device_code (refresh_token alone grants nothing)", cl.ID)
	}
	return codeFlow
}

// clientURI checks a registered redirect URI: absolute, no fragment
// (RFC 6749 §3.1.2), https unless loopback or a native-app scheme.
func (v *validator) clientURI(key, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == ""):
		v.fail(key, "%s must be an absolute URI, not %q", key, raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		v.fail(key, "%s must not contain a fragment (RFC 6749 §3.1.2): %q", key, raw)
	case u.Scheme == "http" && !IsLoopbackHost(u.Hostname()):
		v.fail(key, "%s must use https (http only for localhost): %q", key, raw)
	case u.Scheme == "javascript" || u.Scheme == "data" || u.Scheme == "file":
		v.fail(key, "%s uses a scheme that can never be a redirect target: %q", key, raw)
	}
}

// policy compiles the policy with authz.CompilePolicy, the check's own
// validator, and reports each of its mistakes at its line. Then, for the
// rules that compile, it checks what needs the rest of the file: that a
// protected host can complete a sign-in.
func (v *validator) policy(c *Config) {
	if _, err := authz.CompilePolicy(c.Policy); err != nil {
		errs := []error{err}
		var list interface{ Unwrap() []error }
		if errors.As(err, &list) {
			errs = list.Unwrap()
		}
		for _, e := range errs {
			var re *authz.RuleError
			switch {
			case errors.As(e, &re):
				key := "policy." + re.Path()
				v.fail(key, "%s: %s", key, re.Err)
			case errors.Is(e, authz.ErrUnknownDefault):
				v.fail("policy.default", "policy.default must be one of deny, authenticated, not %q", c.Policy.Default)
			default:
				v.fail("policy", "policy: %s", e)
			}
		}
	}
	for i, r := range c.Policy.Rules {
		for j, h := range r.Hosts {
			if hp, err := authz.ParseHostPattern(h); err == nil {
				v.policyHost(c, fmt.Sprintf("policy.rules[%d].hosts[%d]", i, j), h, hp.Domain, r.Public)
			}
		}
	}
}

// policyHost checks that a protected host can complete a sign-in: the SSO
// cookie must reach it, and /login must be allowed to send the browser back.
// host is the pattern's domain (lower case, without "*.").
func (v *validator) policyHost(c *Config, key, pattern, host string, public bool) {
	if public {
		return
	}
	if d := c.Session.CookieDomain; d != "" && !DomainCovers(d, host) {
		v.fail(key, "%s: %s is outside session.cookie_domain %q: the browser would not send the session cookie there, and sign-in would loop", key, pattern, d)
	} else if d == "" && host != issuerHost(c) {
		v.fail(key, "%s: %s is not the issuer's host and session.cookie_domain is empty: set session.cookie_domain (e.g. %q) so the session cookie reaches it", key, pattern, "."+parentDomain(issuerHost(c)))
	}
	covered := host == issuerHost(c)
	for _, d := range c.Session.AllowedRedirectDomains {
		covered = covered || DomainCovers(d, host)
	}
	if !covered {
		v.fail(key, "%s: %s is not under session.allowed_redirect_domains, so after sign-in the browser could not return to it; add %q", key, pattern, "."+parentDomain(host))
	}
}

func parentDomain(host string) string {
	if _, rest, ok := strings.Cut(host, "."); ok && strings.Contains(rest, ".") {
		return rest
	}
	return host
}
