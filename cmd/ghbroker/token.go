package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// tokenEarly is how long before its expiry a cached token is renewed.
const tokenEarly = time.Minute

// tokenFlags are the flags of `ghbroker token`.
type tokenFlags struct {
	issuer, clientID, scope, cacheDir    string
	clientSecret, clientSecretFile       string
	idToken, noBrowser, execCred, logout bool
}

// cmdToken signs a command line in with the device authorization grant
// (RFC 8628) and prints a token: the access token, the ID token with
// --id-token, or a Kubernetes ExecCredential with --exec-credential. Tokens
// are cached; the next run reuses them or refreshes them silently. A
// confidential client gives its secret (GHBROKER_CLIENT_SECRET,
// --client-secret-file or --client-secret), sent as the issuer's discovery
// says: client_secret_basic, or client_secret_post when only that is
// listed.
func cmdToken(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "token")
	var f tokenFlags
	fs.StringVar(&f.issuer, "issuer", "", "the broker's issuer URL (required)")
	fs.StringVar(&f.clientID, "client-id", "", "an OIDC client with the device_code grant (required)")
	fs.StringVar(&f.clientSecretFile, "client-secret-file", "", "a file holding the secret of a confidential client ("+clientSecretEnv+" wins over it)")
	fs.StringVar(&f.clientSecret, "client-secret", "", "the secret of a confidential client; other users see it in ps: prefer --client-secret-file or "+clientSecretEnv)
	fs.StringVar(&f.scope, "scope", "openid profile email groups offline_access", "scopes to ask for")
	fs.BoolVar(&f.idToken, "id-token", false, "print the ID token instead of the access token")
	fs.BoolVar(&f.noBrowser, "no-browser", false, "do not open a browser; only print the URL and code")
	fs.BoolVar(&f.execCred, "exec-credential", false, "print a Kubernetes ExecCredential (client.authentication.k8s.io/v1) carrying the ID token")
	fs.BoolVar(&f.logout, "logout", false, "revoke the cached refresh token and forget the cache")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "token cache directory (default $XDG_CACHE_HOME/ghbroker)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.issuer == "" || f.clientID == "" {
		return usageErr("token: --issuer and --client-id are required")
	}
	f.issuer = strings.TrimSuffix(f.issuer, "/")
	secret, note, err := clientSecret(e, f)
	if err != nil {
		return err
	}
	if f.cacheDir == "" {
		dir, err := userCacheDir(e)
		if err != nil {
			return runtimeErr(fmt.Errorf("token: no cache directory (set XDG_CACHE_HOME or --cache-dir): %w", err))
		}
		f.cacheDir = filepath.Join(dir, "ghbroker")
	}
	t := &tokenRun{e: e, f: f, http: cliHTTPClient(), secret: secret}
	if note != "" {
		t.say(note)
	}
	t.cache = newTokenCache(f.cacheDir, f.issuer, f.clientID, f.scope)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, t.http)
	if f.logout {
		return t.signOut(ctx)
	}
	tok, err := t.token(ctx)
	if err != nil {
		return err
	}
	return t.print(tok)
}

// userCacheDir is os.UserCacheDir, reading XDG_CACHE_HOME through env so
// that tests can point it elsewhere.
func userCacheDir(e env) (string, error) {
	if d, ok := e.lookupEnv("XDG_CACHE_HOME"); ok && filepath.IsAbs(d) {
		return d, nil
	}
	return os.UserCacheDir()
}

// cliHTTPClient dials loopback for *.localhost names (RFC 6761 §6.3), which
// not every resolver knows, so `ghbroker token` reaches `ghbroker dev`.
func cliHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

// tokenRun is one run of `ghbroker token`.
type tokenRun struct {
	e     env
	f     tokenFlags
	http  *http.Client
	cache tokenCache
	// secret is the confidential client's secret; "" for a public client.
	secret string
}

// providerMeta is what the command reads of the discovery document.
type providerMeta struct {
	Issuer             string `json:"issuer"`
	TokenEndpoint      string `json:"token_endpoint"`
	DeviceEndpoint     string `json:"device_authorization_endpoint"`
	RevocationEndpoint string `json:"revocation_endpoint"`
	// TokenAuthMethods are how clients may authenticate at /token, and
	// so at the device authorization endpoint (RFC 8628 §3.1).
	TokenAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	// RevocationAuthMethods are how clients may authenticate at /revoke.
	RevocationAuthMethods []string `json:"revocation_endpoint_auth_methods_supported"`
}

// discover reads the issuer's discovery document.
func (t *tokenRun) discover(ctx context.Context) (providerMeta, error) {
	var m providerMeta
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.f.issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return m, usageErr("token: --issuer %q is not a URL", t.f.issuer)
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return m, runtimeErr(fmt.Errorf("token: cannot reach the issuer: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, runtimeErr(fmt.Errorf("token: %s answered %s to discovery", t.f.issuer, resp.Status))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m); err != nil || m.Issuer != t.f.issuer {
		return m, runtimeErr(fmt.Errorf("token: %s does not publish a discovery document for itself", t.f.issuer))
	}
	if m.DeviceEndpoint == "" || m.TokenEndpoint == "" {
		return m, runtimeErr(fmt.Errorf("token: %s does not offer the device authorization grant", t.f.issuer))
	}
	return m, nil
}

// oauthConfig is the client at the issuer m describes. A public client
// names itself in the form; a confidential one authenticates as the
// issuer's discovery says.
func (t *tokenRun) oauthConfig(m providerMeta) (*oauth2.Config, error) {
	style := oauth2.AuthStyleInParams
	if t.secret != "" {
		var err error
		if style, err = authStyle("token endpoint", m.TokenAuthMethods); err != nil {
			return nil, runtimeErr(fmt.Errorf("token: %w", err))
		}
	}
	return &oauth2.Config{
		ClientID: t.f.clientID, ClientSecret: t.secret, Scopes: strings.Fields(t.f.scope),
		Endpoint: oauth2.Endpoint{TokenURL: m.TokenEndpoint, DeviceAuthURL: m.DeviceEndpoint, AuthStyle: style},
	}, nil
}

// deviceAuth asks the device authorization endpoint for a code,
// authenticating the way the client does at /token (RFC 8628 §3.1):
// oauth2 sends only client_id there.
func (t *tokenRun) deviceAuth(ctx context.Context, conf *oauth2.Config) (*oauth2.DeviceAuthResponse, error) {
	switch {
	case t.secret == "":
	case conf.Endpoint.AuthStyle == oauth2.AuthStyleInHeader:
		c := *t.http
		c.Transport = basicAuth{base: t.http.Transport, id: t.f.clientID, secret: t.secret}
		ctx = context.WithValue(ctx, oauth2.HTTPClient, &c)
	default:
		return conf.DeviceAuth(ctx, oauth2.SetAuthURLParam("client_secret", t.secret))
	}
	return conf.DeviceAuth(ctx)
}

func (t *tokenRun) say(msg string) { fmt.Fprintln(t.e.stderr, "ghbroker:", msg) }

// token returns a live token: from the cache, refreshed, or from a new
// device flow.
func (t *tokenRun) token(ctx context.Context) (cachedToken, error) {
	cached, err := t.cache.load(t.f.issuer, t.f.clientID, t.say)
	if err != nil && !errors.Is(err, errNoCache) {
		return cachedToken{}, runtimeErr(err)
	}
	if err == nil && time.Until(cached.Expiry) > tokenEarly && (cached.IDToken != "" || !t.wantsIDToken()) {
		return cached, nil
	}
	m, err := t.discover(ctx)
	if err != nil {
		return cachedToken{}, err
	}
	conf, err := t.oauthConfig(m)
	if err != nil {
		return cachedToken{}, err
	}
	if cached.RefreshToken != "" {
		tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: cached.RefreshToken}).Token()
		if err == nil {
			return t.keep(tok, cached.RefreshToken)
		}
		re, ok := errors.AsType[*oauth2.RetrieveError](err)
		switch {
		case !ok:
			return cachedToken{}, runtimeErr(fmt.Errorf("token: refreshing: %w", err))
		case re.ErrorCode == "invalid_client":
			return cachedToken{}, t.refused("refreshing", err) // a new sign-in would be refused too
		}
		t.say("the cached sign-in can no longer be refreshed; signing in again")
	}
	da, err := t.deviceAuth(ctx, conf)
	if err != nil {
		return cachedToken{}, t.refused("starting the device sign-in", err)
	}
	fmt.Fprintf(t.e.stderr, "To sign in, open %s and enter the code %s\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(t.e.stderr, "or open %s\n", da.VerificationURIComplete)
	}
	if !t.f.noBrowser {
		openBrowser(da.VerificationURIComplete)
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		return cachedToken{}, t.refused("the device sign-in did not complete", err)
	}
	return t.keep(tok, "")
}

func (t *tokenRun) wantsIDToken() bool { return t.f.idToken || t.f.execCred }

// keep caches a new token (keeping the old refresh token if the answer had
// none) and returns it.
func (t *tokenRun) keep(tok *oauth2.Token, oldRefresh string) (cachedToken, error) {
	c := cachedToken{
		Issuer: t.f.issuer, ClientID: t.f.clientID, Scope: t.f.scope,
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry,
	}
	if c.RefreshToken == "" {
		c.RefreshToken = oldRefresh
	}
	c.IDToken, _ = tok.Extra("id_token").(string)
	if t.wantsIDToken() && c.IDToken == "" {
		return c, runtimeErr(errors.New("token: the issuer sent no ID token (is openid in --scope?)"))
	}
	if err := t.cache.save(c); err != nil {
		t.say(err.Error() + "; the token is not cached")
	}
	return c, nil
}

// oauthMessage is the OAuth error of err in words, else err.
func oauthMessage(err error) string {
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok && re.ErrorCode != "" {
		if re.ErrorDescription != "" {
			return re.ErrorCode + ": " + re.ErrorDescription
		}
		return re.ErrorCode
	}
	return err.Error()
}

// execCredential is client.authentication.k8s.io/v1 ExecCredential.
type execCredential struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Status     struct {
		Token               string `json:"token"`
		ExpirationTimestamp string `json:"expirationTimestamp"`
	} `json:"status"`
}

// print writes the chosen token on stdout.
func (t *tokenRun) print(c cachedToken) error {
	switch {
	case t.f.execCred:
		var ec execCredential
		ec.APIVersion, ec.Kind = "client.authentication.k8s.io/v1", "ExecCredential"
		ec.Status.Token, ec.Status.ExpirationTimestamp = c.IDToken, c.Expiry.UTC().Format(time.RFC3339)
		return json.NewEncoder(t.e.stdout).Encode(ec)
	case t.f.idToken:
		_, err := fmt.Fprintln(t.e.stdout, c.IDToken)
		return err
	}
	_, err := fmt.Fprintln(t.e.stdout, c.AccessToken)
	return err
}

// signOut revokes the cached refresh token (RFC 7009) and forgets the
// cache.
func (t *tokenRun) signOut(ctx context.Context) error {
	cached, err := t.cache.load(t.f.issuer, t.f.clientID, t.say)
	if errors.Is(err, errNoCache) {
		t.say("not signed in; nothing to forget")
		return nil
	}
	if err != nil {
		return runtimeErr(err)
	}
	if cached.RefreshToken != "" {
		if err := t.revoke(ctx, cached.RefreshToken); err != nil {
			t.say("could not revoke the refresh token (" + err.Error() + "); forgetting it anyway")
		}
	}
	if err := t.cache.remove(); err != nil {
		return runtimeErr(err)
	}
	t.say("signed out")
	return nil
}

func (t *tokenRun) revoke(ctx context.Context, refresh string) error {
	m, err := t.discover(ctx)
	if err != nil {
		return err
	}
	if m.RevocationEndpoint == "" {
		return errors.New("the issuer has no revocation endpoint")
	}
	methods := m.RevocationAuthMethods
	if len(methods) == 0 {
		methods = m.TokenAuthMethods
	}
	style, err := authStyle("revocation endpoint", methods)
	if err != nil && t.secret != "" {
		return err
	}
	form := url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}, "client_id": {t.f.clientID}}
	req, err := formRequest(ctx, m.RevocationEndpoint, form, style, t.f.clientID, t.secret)
	if err != nil {
		return err
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the revocation endpoint answered %s", resp.Status)
	}
	return nil
}

// openBrowser opens u when a browser opener exists; it never fails.
func openBrowser(u string) {
	name := "xdg-open"
	if runtime.GOOS == "darwin" {
		name = "open"
	}
	path, err := exec.LookPath(name)
	if err != nil || u == "" {
		return
	}
	cmd := exec.Command(path, u)
	if cmd.Start() == nil {
		go func() { _ = cmd.Wait() }()
	}
}
