package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ghbroker/ghbroker/authz"
)

type validator struct {
	lines    map[string]int
	env      Env
	problems []Problem
	// authzOnly validates for the stateless replica: no github, storage
	// or clients.
	authzOnly bool
}

// fail records a problem at the line of key (or of its closest parent that
// the file sets).
func (v *validator) fail(key, format string, args ...any) {
	v.problems = append(v.problems, Problem{Line: v.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) line(key string) int {
	for k := key; k != ""; {
		if l, ok := v.lines[k]; ok {
			return l
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return v.lines[""]
}

func (v *validator) validate(c *Config) {
	v.issuer(c)
	v.listeners(c)
	v.oneOf("log.format", c.Log.Format, "json", "text")
	if _, err := authz.ParseDialect(c.Authz.Dialect); err != nil {
		v.fail("authz.dialect", "authz.dialect %s, not %q", authz.ErrUnknownDialect, c.Authz.Dialect)
	}
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	if !v.authzOnly {
		v.storage(c)
		v.github(c)
	}
	v.session(c)
	v.oneOf("keys.algorithm", c.Keys.Algorithm, "RS256", "ES256", "EdDSA")
	if c.Keys.RotateEvery.D() < time.Minute {
		v.fail("keys.rotate_every", "keys.rotate_every must be at least 1m, not %s", c.Keys.RotateEvery.D())
	}
	if !v.authzOnly {
		v.clients(c)
	}
	v.policy(c)
}

func (v *validator) oneOf(key, val string, allowed ...string) {
	if !slices.Contains(allowed, val) {
		v.fail(key, "%s must be one of %s, not %q", key, strings.Join(allowed, ", "), val)
	}
}

// IsLoopbackHost reports whether host (without port) is localhost or a
// loopback address, where plain http is allowed for development.
func IsLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) issuer(c *Config) {
	if c.Issuer == "" {
		v.fail("issuer", "issuer is required: the public URL of the broker, e.g. https://auth.example.com")
		return
	}
	u, err := url.Parse(c.Issuer)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		v.fail("issuer", "issuer %q is not an absolute URL such as https://auth.example.com", c.Issuer)
	case u.Scheme == "http" && !IsLoopbackHost(u.Hostname()):
		v.fail("issuer", "issuer must use https (plain http is allowed only for localhost), not %q", c.Issuer)
	case u.Scheme != "https" && u.Scheme != "http":
		v.fail("issuer", "issuer must be an https URL, not %q", c.Issuer)
	case u.RawQuery != "" || u.Fragment != "" || strings.Contains(c.Issuer, "?") || strings.Contains(c.Issuer, "#"):
		v.fail("issuer", "issuer must not have a query or fragment (OIDC Discovery §3): %q", c.Issuer)
	case u.User != nil:
		v.fail("issuer", "issuer must not contain a user name or password")
	}
}

func (v *validator) listeners(c *Config) {
	seen := map[string]string{}
	for _, l := range []struct{ key, addr string }{
		{"listen", c.Listen}, {"authz.listen", c.Authz.Listen}, {"authz.grpc_listen", c.Authz.GRPCListen}, {"metrics.listen", c.Metrics.Listen},
		{"revocations.listen", c.Revocations.Listen},
	} {
		if l.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(l.addr); err != nil || port == "" {
			v.fail(l.key, "%s must be host:port or :port, not %q", l.key, l.addr)
			continue
		}
		if other, dup := seen[l.addr]; dup {
			v.fail(l.key, "%s uses %s, which %s already uses", l.key, l.addr, other)
		}
		seen[l.addr] = l.key
	}
	r := c.Authz.Revocations
	v.oneOf("authz.revocations.mode", r.Mode, "best_effort", "strict")
	if r.URL != "" {
		if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.fail("authz.revocations.url", "authz.revocations.url must be an http(s) URL of the broker's feed, e.g. http://ghbroker-internal:8082/revocations, not %q", r.URL)
		}
	}
	if r.MaxStale.D() < time.Second || r.Poll.D() < 100*time.Millisecond {
		v.fail("authz.revocations", "authz.revocations.max_stale must be at least 1s and poll at least 100ms")
	}
	lim := c.Listeners
	for _, d := range []struct {
		key string
		d   Duration
	}{
		{"listeners.read_header_timeout", lim.ReadHeaderTimeout}, {"listeners.read_timeout", lim.ReadTimeout},
		{"listeners.write_timeout", lim.WriteTimeout}, {"listeners.idle_timeout", lim.IdleTimeout},
	} {
		if d.d.D() <= 0 {
			v.fail(d.key, "%s must be a positive duration, not %s", d.key, d.d.D())
		}
	}
	if lim.ReadTimeout.D() < lim.ReadHeaderTimeout.D() {
		v.fail("listeners.read_timeout", "listeners.read_timeout (%s) must not be shorter than listeners.read_header_timeout (%s)", lim.ReadTimeout.D(), lim.ReadHeaderTimeout.D())
	}
	if lim.MaxConnections < 1 {
		v.fail("listeners.max_connections", "listeners.max_connections must be at least 1, not %d", lim.MaxConnections)
	}
}

func (v *validator) github(c *Config) {
	g := &c.GitHub
	if g.ClientID == "" {
		v.fail("github.client_id", "github.client_id is required (the OAuth App's client id)")
	}
	before := len(v.problems)
	g.ClientSecret = v.secret("github", g.ClientSecret, "", g.ClientSecretFile, SecretEnv, "client_secret")
	g.WebhookSecret = v.secret("github", g.WebhookSecret, g.WebhookSecretEnv, g.WebhookSecretFile, "", "webhook_secret")
	if g.ClientSecret == "" && g.ClientID != "" && len(v.problems) == before {
		v.fail("github", "the GitHub client secret is missing: set %s, github.client_secret_file or github.client_secret", SecretEnv)
	}
	v.baseURL("github.url", g.URL)
	v.baseURL("github.api_url", g.APIURL)
	if len(g.AllowedOrgs) == 0 {
		v.fail("github.allowed_orgs", "github.allowed_orgs must list at least one GitHub organization; signing in requires membership of one")
	}
	for i, o := range g.AllowedOrgs {
		if o == "" || strings.ContainsAny(o, "/: ") {
			v.fail(fmt.Sprintf("github.allowed_orgs[%d]", i), "github.allowed_orgs[%d] must be an organization login, not %q", i, o)
		}
	}
	v.oneOf("github.groups_format", g.GroupsFormat, "github", "dex")
}

func (v *validator) baseURL(key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		v.fail(key, "%s must be an absolute http(s) URL without query, not %q", key, raw)
	}
}

// secret resolves a secret from, in order: the environment variable
// envName (when non-empty), the variable named by envKey, file, inline.
// Setting more than one place in the file is an error.
func (v *validator) secret(key, inline, envKey, file, envName, inlineName string) string {
	set := 0
	for _, s := range []string{inline, envKey, file} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		v.fail(key, "%s sets its %s in more than one place; keep only one", key, inlineName)
		return ""
	}
	if envName != "" {
		if s, ok := v.env(envName); ok && s != "" {
			return s
		}
	}
	switch {
	case envKey != "":
		s, ok := v.env(envKey)
		if !ok || s == "" {
			v.fail(key+"."+inlineName+"_env", "%s: environment variable %s is not set", key, envKey)
		}
		return s
	case file != "":
		raw, err := os.ReadFile(file)
		if err != nil {
			v.fail(key+"."+inlineName+"_file", "%s: cannot read secret file %s: %s", key, file, errText(err))
			return ""
		}
		s := strings.TrimSpace(string(raw))
		if s == "" {
			v.fail(key+"."+inlineName+"_file", "%s: secret file %s is empty", key, file)
		}
		return s
	}
	return inline
}

func (v *validator) storage(c *Config) {
	e := c.Storage.Etcd
	if e == nil {
		if c.Storage.Bolt.Path == "" {
			v.fail("storage.bolt.path", "storage.bolt.path must name the store file")
		}
		return
	}
	if _, bolt := v.lines["storage.bolt"]; bolt {
		v.fail("storage.etcd", "storage sets both bolt and etcd; set exactly one of storage.bolt (one serve process) and storage.etcd (any number of replicas)")
	}
	if len(e.Endpoints) == 0 {
		v.fail("storage.etcd.endpoints", "storage.etcd.endpoints must list the etcd client URLs, e.g. [https://etcd-0.etcd:2379]")
	}
	for i, ep := range e.Endpoints {
		key := fmt.Sprintf("storage.etcd.endpoints[%d]", i)
		u, err := url.Parse(ep)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			v.fail(key, "%s must be an http or https URL such as https://etcd-0.etcd:2379, not %q", key, ep)
		case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil:
			v.fail(key, "%s must be scheme://host:port only, not %q", key, ep)
		case u.Scheme == "http" && e.TLS.Set():
			v.fail(key, "%s is plain http, but storage.etcd.tls is set; use https", key)
		}
	}
	if !strings.HasPrefix(e.Prefix, "/") || !strings.HasSuffix(e.Prefix, "/") {
		v.fail("storage.etcd.prefix", "storage.etcd.prefix must start and end with /, not %q", e.Prefix)
	}
	if e.DialTimeout.D() < 0 || e.RequestTimeout.D() < 0 {
		v.fail("storage.etcd", "storage.etcd timeouts must be positive")
	}
	if _, err := e.TLS.Config(); err != nil {
		v.fail("storage.etcd.tls", "storage.etcd.tls: %v", err)
	}
	before := len(v.problems)
	e.Password = v.secret("storage.etcd", e.Password, e.PasswordEnv, e.PasswordFile, "", "password")
	switch {
	case len(v.problems) > before:
	case e.Username != "" && e.Password == "":
		v.fail("storage.etcd.username", "storage.etcd.username is set but no password: set storage.etcd.password_env or password_file")
	case e.Username == "" && e.Password != "":
		v.fail("storage.etcd", "storage.etcd has a password but no username")
	}
}
