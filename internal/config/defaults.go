package config

import (
	"reflect"
	"strings"
	"time"
)

// Default values, the one place they are written. The README's
// configuration reference lists the same values.
const (
	DefaultListen       = ":8080"
	DefaultBoltPath     = "/var/lib/ghbroker/ghbroker.db"
	DefaultEtcdPrefix   = "/ghbroker/"
	DefaultEtcdDial     = 5 * time.Second
	DefaultEtcdRequest  = 3 * time.Second
	DefaultGitHubURL    = "https://github.com"
	DefaultGitHubAPIURL = "https://api.github.com"
	DefaultCookieName   = "_ghbroker"
	DefaultSessionTTL   = time.Hour
	DefaultMaxAge       = 168 * time.Hour
	DefaultHSTSMaxAge   = 365 * 24 * time.Hour
	DefaultAlgorithm    = "RS256"
	DefaultRotateEvery  = 24 * time.Hour
	DefaultPolicy       = "deny"
	DefaultLogFormat    = "json"
	DefaultLogLevel     = "info"
	DefaultGroupsFormat = "github"
	DefaultTokenTTL     = time.Hour
	MaxTokenTTL         = 24 * time.Hour
	// Listener limits (listeners.*).
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxConnections    = 4096
	// SecretEnv is the environment variable that overrides
	// github.client_secret.
	SecretEnv = "GHBROKER_GITHUB_CLIENT_SECRET"
)

func reflectValue(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() }

func applyDefaults(c *Config) {
	set := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	setD := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	set(&c.Listen, DefaultListen)
	set(&c.Log.Format, DefaultLogFormat)
	set(&c.Log.Level, DefaultLogLevel)
	if e := c.Storage.Etcd; e != nil {
		set(&e.Prefix, DefaultEtcdPrefix)
		setD(&e.DialTimeout, DefaultEtcdDial)
		setD(&e.RequestTimeout, DefaultEtcdRequest)
	} else {
		set(&c.Storage.Bolt.Path, DefaultBoltPath)
	}
	set(&c.GitHub.URL, DefaultGitHubURL)
	c.GitHub.URL = strings.TrimSuffix(c.GitHub.URL, "/")
	if c.GitHub.APIURL == "" {
		if c.GitHub.URL == DefaultGitHubURL {
			c.GitHub.APIURL = DefaultGitHubAPIURL
		} else {
			c.GitHub.APIURL = c.GitHub.URL + "/api/v3"
		}
	}
	c.GitHub.APIURL = strings.TrimSuffix(c.GitHub.APIURL, "/")
	set(&c.GitHub.GroupsFormat, DefaultGroupsFormat)
	set(&c.Session.CookieName, DefaultCookieName)
	setD(&c.Session.TTL, DefaultSessionTTL)
	setD(&c.Session.MaxAge, DefaultMaxAge)
	setD(&c.Session.RecheckEvery, 15*time.Minute)
	if c.Session.HSTSMaxAge == nil {
		d := Duration(DefaultHSTSMaxAge)
		c.Session.HSTSMaxAge = &d
	}
	set(&c.Authz.Revocations.Mode, "best_effort")
	setD(&c.Authz.Revocations.MaxStale, 30*time.Second)
	setD(&c.Authz.Revocations.Poll, time.Second)
	set(&c.Keys.Algorithm, DefaultAlgorithm)
	setD(&c.Keys.RotateEvery, DefaultRotateEvery)
	set(&c.Policy.Default, DefaultPolicy)
	setD(&c.Listeners.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setD(&c.Listeners.ReadTimeout, DefaultReadTimeout)
	setD(&c.Listeners.WriteTimeout, DefaultWriteTimeout)
	setD(&c.Listeners.IdleTimeout, DefaultIdleTimeout)
	if c.Listeners.MaxConnections == 0 {
		c.Listeners.MaxConnections = DefaultMaxConnections
	}
	for i := range c.Clients {
		setD(&c.Clients[i].TokenTTL, DefaultTokenTTL)
	}
}
