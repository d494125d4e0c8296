// Package config reads ghbroker's YAML configuration file strictly (an
// unknown key, a wrong type or an impossible combination is an error that
// names the file, line and key), resolves secrets from the environment or
// files, fills defaults and validates the result.
//
// It owns the file format only. Packages never receive the whole tree: the
// command wires each piece into the constructor that needs it.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"

	"github.com/ghbroker/ghbroker/authz"
)

// Config is the whole configuration file. Field comments give defaults;
// Defaults (defaults.go) is the one place they are set.
type Config struct {
	// Issuer is the public base URL of the broker, without a trailing
	// slash: https, or http for localhost only.
	Issuer string `yaml:"issuer"`
	// Listen is the address of the main listener (login, OIDC, JWKS,
	// /authz, /metrics). Default ":8080".
	Listen string `yaml:"listen"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// Listeners bounds every listener: timeouts and connections.
	Listeners Listeners `yaml:"listeners"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `yaml:"metrics"`
	// Revocations configures the broker's revocation feed.
	Revocations Revocations `yaml:"revocations"`
	// Authz configures the gateway authorization check.
	Authz Authz `yaml:"authz"`
	// Storage selects the store.
	Storage Storage `yaml:"storage"`
	// GitHub configures the upstream identity provider.
	GitHub GitHub `yaml:"github"`
	// Session configures the SSO cookie and sessions.
	Session Session `yaml:"session"`
	// Keys configures token signing keys.
	Keys Keys `yaml:"keys"`
	// Clients are the static OIDC relying parties.
	Clients []Client `yaml:"clients"`
	// Policy is the per-host access policy of the authz check. Its type
	// belongs to authz, which validates it (authz.CompilePolicy).
	Policy authz.PolicyConfig `yaml:"policy"`
}

// Log configures the structured log.
type Log struct {
	// Format is "json" (default) or "text".
	Format string `yaml:"format"`
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
}

// Listeners are the limits every listener (listen, authz.listen,
// authz.grpc_listen, metrics.listen, the admin socket) applies, each on
// its own: a slow client cannot hold a connection open for free, and no
// listener holds more than MaxConnections at once.
type Listeners struct {
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included.
	// Default 30s; at least ReadHeaderTimeout.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response, from the end of the request
	// headers. Default 30s.
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout closes a keep-alive connection idle that long (gRPC: a
	// connection without streams). Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxConnections caps the connections each listener holds open at
	// once; more wait to be accepted. Default 4096.
	MaxConnections int `yaml:"max_connections"`
}

// Metrics configures where /metrics is served.
type Metrics struct {
	// Listen, when set, serves /metrics (and only /metrics) on a listener
	// of its own, and the main listener has no /metrics. Empty serves it
	// on the main listener.
	Listen string `yaml:"listen"`
}

// Authz configures the authorization check's extra listeners.
type Authz struct {
	// Listen, when set, is a listener where every path is a check.
	Listen string `yaml:"listen"`
	// Dialect fixes the gateway convention of the checks on Listen:
	// "envoy" (Envoy's HTTP ext_authz, Emissary's proto: http), "nginx",
	// "traefik", or "auto" (default: told from each check's headers).
	// The main listener's /authz-envoy, /authz-nginx and /authz-traefik
	// have theirs fixed by their path; its /authz is automatic.
	Dialect string `yaml:"dialect"`
	// GRPCListen, when set, serves envoy.service.auth.v3.Authorization.
	GRPCListen string `yaml:"grpc_listen"`
	// IDTokenAudiences lists client ids whose ID tokens the check accepts
	// as Bearer credentials. Empty by default.
	IDTokenAudiences []string `yaml:"id_token_audiences"`
	// ForwardToken puts the verified token in the allowed request's
	// Authorization header, so that upstreams can verify it against /keys.
	// Default true; false saves about 800 bytes per request for upstreams
	// that only read the identity headers.
	ForwardToken *bool `yaml:"forward_token"`
	// Revocations is how a `ghbroker authz` replica follows the broker's
	// revocation feed (serve keeps the set itself and ignores it).
	Revocations AuthzRevocations `yaml:"revocations"`
}

// Revocations configures the broker's side of the revocation feed.
type Revocations struct {
	// Listen, when set, serves the signed feed at /revocations for
	// `ghbroker authz` replicas, on a listener of its own that no public
	// gateway routes to (e.g. ":8082").
	Listen string `yaml:"listen"`
}

// AuthzRevocations configures a replica's reading of the feed.
type AuthzRevocations struct {
	// URL is the broker's feed, e.g.
	// http://ghbroker-internal:8082/revocations. Unset: the replica
	// enforces no revocations, and says so at start and in its metrics.
	URL string `yaml:"url"`
	// Mode is "best_effort" (default: keep deciding with the last set
	// received) or "strict" (not ready before the first fetch; session
	// tokens refused whenever the set is older than MaxStale).
	Mode string `yaml:"mode"`
	// MaxStale is how old a strict replica's set may get. Default 30s.
	MaxStale Duration `yaml:"max_stale"`
	// Poll bounds the time between requests when a long poll is not
	// possible. Default 1s.
	Poll Duration `yaml:"poll"`
}

// Storage selects and configures the store: exactly one of Bolt and Etcd.
type Storage struct {
	// Bolt is the embedded bbolt store (the default): one serve process.
	Bolt Bolt `yaml:"bolt"`
	// Etcd, when set, keeps the state in etcd v3, shared by any number of
	// serve replicas.
	Etcd *Etcd `yaml:"etcd"`
}

// Etcd configures the etcd store (docs/ha.md).
type Etcd struct {
	// Endpoints are the client URLs of the etcd members (http or https).
	// Required.
	Endpoints []string `yaml:"endpoints"`
	// Prefix is prepended to every key; it starts and ends with "/".
	// Default "/ghbroker/".
	Prefix string `yaml:"prefix"`
	// DialTimeout bounds the first contact with the cluster at start-up.
	// Default 5s.
	DialTimeout Duration `yaml:"dial_timeout"`
	// RequestTimeout bounds every store call; past it the request answers
	// 503 with Retry-After. Default 3s.
	RequestTimeout Duration `yaml:"request_timeout"`
	// TLS configures https endpoints: the CA that signed the members'
	// certificates and, for mTLS, a client certificate and key.
	TLS EtcdTLS `yaml:"tls"`
	// Username, when set, authenticates to etcd with a password from
	// Password, PasswordEnv or PasswordFile.
	Username string `yaml:"username"`
	// Password is the etcd password; prefer PasswordEnv or PasswordFile.
	Password string `yaml:"password"`
	// PasswordEnv names an environment variable holding the password.
	PasswordEnv string `yaml:"password_env"`
	// PasswordFile is a file holding the password.
	PasswordFile string `yaml:"password_file"`
}

// EtcdTLS names the PEM files of the etcd connection.
type EtcdTLS struct {
	// CAFile is the CA bundle that verifies the members; empty means the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and key (mTLS);
	// both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Set reports whether any TLS file is named.
func (t EtcdTLS) Set() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// Config loads the named files into a TLS client configuration; nil when
// none is named. check-config and serve both go through it.
func (t EtcdTLS) Config() (*tls.Config, error) {
	if !t.Set() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read ca_file %s: %s", t.CAFile, errText(err))
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", t.CAFile)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("cert_file and key_file go together: set both for mTLS, or neither")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load cert_file %s with key_file %s: %v", t.CertFile, t.KeyFile, err)
		}
		// Read the pair again at every handshake, so that a renewed
		// certificate (cert-manager rewrites the mounted Secret) is used
		// without a restart; keep the last good one if the files are
		// mid-update.
		var mu sync.Mutex
		last := &cert
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			if fresh, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err == nil {
				last = &fresh
			}
			return last, nil
		}
	}
	return c, nil
}

// Bolt configures the bbolt store.
type Bolt struct {
	// Path is the store file. Default /var/lib/ghbroker/ghbroker.db.
	Path string `yaml:"path"`
}

// GitHub configures sign-in with GitHub or GitHub Enterprise Server.
type GitHub struct {
	// ClientID is the OAuth App's client id. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the OAuth App's secret. Prefer the environment
	// variable GHBROKER_GITHUB_CLIENT_SECRET or ClientSecretFile.
	ClientSecret string `yaml:"client_secret"`
	// ClientSecretFile is a file holding the secret.
	ClientSecretFile string `yaml:"client_secret_file"`
	// WebhookSecret checks the organization webhooks sent to
	// /webhooks/github (X-Hub-Signature-256); prefer WebhookSecretEnv or
	// WebhookSecretFile. Unset: /webhooks/github is not served.
	WebhookSecret     string `yaml:"webhook_secret"`
	WebhookSecretEnv  string `yaml:"webhook_secret_env"`
	WebhookSecretFile string `yaml:"webhook_secret_file"`
	// URL is the web base. Default https://github.com.
	URL string `yaml:"url"`
	// APIURL is the REST base. Default https://api.github.com for
	// github.com and URL + "/api/v3" otherwise (GHES).
	APIURL string `yaml:"api_url"`
	// AllowedOrgs: signing in requires membership of one of them.
	AllowedOrgs []string `yaml:"allowed_orgs"`
	// GroupsFormat is "github" (org/team, default) or "dex" (org:team).
	GroupsFormat string `yaml:"groups_format"`
}

// Session configures the SSO session.
type Session struct {
	// CookieName is the session cookie's name. Default "_ghbroker".
	CookieName string `yaml:"cookie_name"`
	// CookieDomain is the SSO cookie's domain (".example.com"); empty
	// means the issuer's host only.
	CookieDomain string `yaml:"cookie_domain"`
	// TTL is the lifetime of the stateless session token. Default 1h.
	TTL Duration `yaml:"ttl"`
	// MaxAge is the server-side session's silent-renewal window.
	// Default 168h.
	MaxAge Duration `yaml:"max_age"`
	// AllowedRedirectDomains are where /login and /logout may send the
	// browser: ".example.com" for the domain and its subdomains, or an
	// exact host.
	AllowedRedirectDomains []string `yaml:"allowed_redirect_domains"`
	// RecheckEvery is how often the memberships of live sessions are
	// re-read from GitHub in the background (tokens of a person whose
	// groups changed are revoked): what bounds staleness where no webhook
	// can be installed. Default 15m, at least 10s.
	RecheckEvery Duration `yaml:"recheck_every"`
	// HSTSMaxAge is the Strict-Transport-Security max-age the broker sends
	// on an https issuer. Default 8760h (a year); 0s sends none.
	HSTSMaxAge *Duration `yaml:"hsts_max_age"`
	// SealKeyEnv and SealKeyFile name where the key that seals GitHub
	// tokens at rest comes from (64 hex digits or 32 bytes in base64),
	// so that a leaked store file or backup does not leak GitHub tokens.
	// GHBROKER_SEAL_KEY wins over both. Unset: a key kept in the store.
	SealKeyEnv  string `yaml:"seal_key_env"`
	SealKeyFile string `yaml:"seal_key_file"`
	// SealKey is the resolved key (never read from YAML).
	SealKey []byte `yaml:"-"`
}

// SealKeyEnvName is the environment variable with the token-sealing key.
const SealKeyEnvName = "GHBROKER_SEAL_KEY"

// Keys configures the signing keys.
type Keys struct {
	// Algorithm is RS256 (default), ES256 or EdDSA.
	Algorithm string `yaml:"algorithm"`
	// RotateEvery is the rotation period. Default 24h; at least 1m.
	RotateEvery Duration `yaml:"rotate_every"`
}

// Client is a static OIDC relying party.
type Client struct {
	// ID is the client_id. Required, unique.
	ID string `yaml:"id"`
	// Secret is the client secret; prefer SecretEnv or SecretFile.
	Secret string `yaml:"secret"`
	// SecretEnv names an environment variable holding the secret.
	SecretEnv string `yaml:"secret_env"`
	// SecretFile is a file holding the secret.
	SecretFile string `yaml:"secret_file"`
	// Public marks a client without a secret; PKCE is then required.
	Public bool `yaml:"public"`
	// Name is shown to people.
	Name string `yaml:"name"`
	// RedirectURIs are matched exactly. At least one, unless GrantTypes
	// leaves out authorization_code.
	RedirectURIs []string `yaml:"redirect_uris"`
	// PostLogoutRedirectURIs are where /logout may return, matched exactly.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// Scopes limits the scopes the client may request; empty means all.
	Scopes []string `yaml:"scopes"`
	// GrantTypes are the grants the client may use: authorization_code,
	// refresh_token, device_code (RFC 8628; the URN
	// urn:ietf:params:oauth:grant-type:device_code is accepted too and
	// read as device_code). Default [authorization_code, refresh_token].
	GrantTypes []string `yaml:"grant_types"`
	// AlwaysIssueRefreshToken issues a refresh token even without the
	// offline_access scope.
	AlwaysIssueRefreshToken bool `yaml:"always_issue_refresh_token"`
	// TokenTTL is the lifetime of the client's ID and access tokens.
	// Default 1h; at most 24h.
	TokenTTL Duration `yaml:"token_ttl"`
	// BackchannelLogoutURI receives OpenID Back-Channel Logout 1.0
	// logout tokens when a session the client has tokens of ends: https,
	// or http on loopback.
	BackchannelLogoutURI string `yaml:"backchannel_logout_uri"`
	// GatewayAccess makes the client's access tokens credentials for the
	// gateway authorization check (they carry the audience ISSUER/gateway).
	// Off by default: an access token is for /userinfo and the client's
	// own use, and a relying party that leaks one does not open every
	// service behind the gateway.
	GatewayAccess bool `yaml:"gateway_access"`
}

// Problem is one mistake in the file.
type Problem struct {
	// Line is the 1-based line, or 0 when the mistake has no line.
	Line int
	// Key is the dotted path of the key, e.g. "keys.rotate_every".
	Key string
	// Msg says what is wrong.
	Msg string
}

// Error lists every problem found in a file, one "FILE:LINE: msg" a line.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if p.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: %s", e.File, p.Line, p.Msg)
		} else {
			fmt.Fprintf(&b, "%s: %s", e.File, p.Msg)
		}
	}
	return b.String()
}

// Env looks up environment variables; os.LookupEnv in production.
type Env func(key string) (string, bool)

// Load reads, decodes, defaults and validates the file at path. Secrets
// named by the file are resolved through env and from disk. Every error
// about the file's content is an *Error.
func Load(path string, env Env) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Problems: []Problem{{Msg: "cannot read the config file: " + errText(err)}}}
	}
	return Parse(path, raw, env)
}

// LoadAuthz reads a config file for `ghbroker authz`, the stateless
// replica: it needs issuer, authz, session (cookie name and domain) and
// policy, and ignores github, storage and clients, which only the broker
// uses. A non-empty issuer overrides the file's.
func LoadAuthz(path string, env Env, issuer string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Problems: []Problem{{Msg: "cannot read the config file: " + errText(err)}}}
	}
	return parse(path, raw, env, issuer, true)
}

// Parse is Load for a file already read.
func Parse(name string, raw []byte, env Env) (*Config, error) {
	return parse(name, raw, env, "", false)
}

func parse(name string, raw []byte, env Env, issuer string, authzOnly bool) (*Config, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, &Error{File: name, Problems: []Problem{yamlProblem(err)}}
	}
	c := &Config{}
	d := &decoder{lines: map[string]int{}}
	switch {
	case root.Kind == 0 || len(root.Content) == 0:
		d.fail(0, "", "the file is empty; at least issuer and github are needed")
	default:
		d.decode(root.Content[0], reflectValue(c), "")
	}
	if len(d.problems) > 0 {
		return nil, &Error{File: name, Problems: d.problems}
	}
	if issuer != "" {
		c.Issuer = issuer
	}
	applyDefaults(c)
	v := &validator{lines: d.lines, env: env, authzOnly: authzOnly}
	v.validate(c)
	if len(v.problems) > 0 {
		return nil, &Error{File: name, Problems: v.problems}
	}
	return c, nil
}

// yamlProblem turns a YAML syntax error into a Problem. yaml/v3 reports
// "yaml: line N: msg"; the line is parsed back out so that the message
// reads like every other one.
func yamlProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		_, rest, _ := strings.Cut(msg, ": ")
		return Problem{Line: line, Msg: "not valid YAML: " + rest}
	}
	return Problem{Msg: "not valid YAML: " + msg}
}

func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
