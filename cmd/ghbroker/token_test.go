package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"

	"github.com/ghbroker/ghbroker/store"
)

// fakeDeviceIssuer is a minimal RFC 8628 issuer: every device code is
// approved at its first poll, and it counts what it was asked. "cli" is a
// public client; "kube" a confidential one with the secret kubeSecret,
// which must come the way discovery advertises (methods; nil advertises
// nothing, which means client_secret_basic).
type fakeDeviceIssuer struct {
	srv     *httptest.Server
	methods []string

	mu                                sync.Mutex
	starts, polls, refreshes, revokes int
	serial                            int
	revoked                           []string
	// auth records how each request authenticated: "device basic",
	// "token post", "revoke none"…
	auth []string
}

const kubeSecret = "kube-secret 0123456789/abcdef+0123456" // a space, a slash and a plus: form-urlencoded inside Basic

func newFakeDeviceIssuer(t *testing.T, methods ...string) *fakeDeviceIssuer {
	f := &fakeDeviceIssuer{methods: methods}
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	iss := f.srv.URL
	js := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		doc := map[string]any{"issuer": iss, "token_endpoint": iss + "/token",
			"device_authorization_endpoint": iss + "/device/code", "revocation_endpoint": iss + "/revoke"}
		if f.methods != nil {
			doc["token_endpoint_auth_methods_supported"] = f.methods
		}
		js(w, 200, doc)
	})
	// authenticated answers invalid_client unless the request is cli
	// naming itself or kube with its secret, sent an advertised way.
	authenticated := func(w http.ResponseWriter, r *http.Request, endpoint string) bool {
		id, sec, basic := r.BasicAuth()
		method := "none"
		switch {
		case basic:
			method = "basic"
			id, _ = url.QueryUnescape(id)
			sec, _ = url.QueryUnescape(sec)
		case r.PostFormValue("client_secret") != "":
			method = "post"
			id, sec = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		default:
			id = r.PostFormValue("client_id")
		}
		f.mu.Lock()
		f.auth = append(f.auth, endpoint+" "+method)
		f.mu.Unlock()
		advertised := f.methods
		if advertised == nil {
			advertised = []string{"client_secret_basic"}
		}
		ok := id == "cli" && method == "none" ||
			id == "kube" && sec == kubeSecret && slices.Contains(advertised, "client_secret_"+method)
		if !ok {
			js(w, 401, map[string]string{"error": "invalid_client", "error_description": "client authentication failed"})
		}
		return ok
	}
	mux.HandleFunc("POST /device/code", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.starts++
		f.mu.Unlock()
		if !authenticated(w, r, "device") {
			return
		}
		js(w, 200, map[string]any{"device_code": "dc", "user_code": "BCDF-GHJK", "verification_uri": iss + "/device",
			"verification_uri_complete": iss + "/device?user_code=BCDF-GHJK", "expires_in": 600, "interval": 1})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if !authenticated(w, r, "token") {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		switch r.FormValue("grant_type") {
		case "urn:ietf:params:oauth:grant-type:device_code":
			f.polls++
		case "refresh_token":
			if !strings.HasPrefix(r.FormValue("refresh_token"), "rt-") {
				js(w, 400, map[string]string{"error": "invalid_grant"})
				return
			}
			f.refreshes++
		default:
			js(w, 400, map[string]string{"error": "unsupported_grant_type"})
			return
		}
		f.serial++
		n := strings.Repeat("x", f.serial)
		js(w, 200, map[string]any{"access_token": "at-" + n, "id_token": "idt-" + n, "refresh_token": "rt-" + n,
			"token_type": "Bearer", "expires_in": 3600})
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		if !authenticated(w, r, "revoke") {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.revokes++
		f.revoked = append(f.revoked, r.FormValue("token"))
	})
	return f
}

func (f *fakeDeviceIssuer) counts() (starts, polls, refreshes, revokes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts, f.polls, f.refreshes, f.revokes
}

func TestTokenCommand(t *testing.T) {
	f := newFakeDeviceIssuer(t)
	cache := t.TempDir()
	environ := map[string]string{"XDG_CACHE_HOME": cache}
	args := []string{"token", "--issuer", f.srv.URL, "--client-id", "cli", "--no-browser"}
	cacheFile := func() string {
		m, _ := filepath.Glob(filepath.Join(cache, "ghbroker", "token-*.json"))
		if len(m) != 1 {
			t.Fatalf("cache files: %v", m)
		}
		return m[0]
	}

	code, out, errOut := runCmd(t, environ, args...)
	if code != 0 || out != "at-x\n" {
		t.Fatalf("first run = %d %q\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, f.srv.URL+"/device") || !strings.Contains(errOut, "BCDF-GHJK") {
		t.Errorf("stderr does not show the URL and code:\n%s", errOut)
	}
	fi, err := os.Stat(cacheFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file mode = %v, %v; want 0600", fi.Mode(), err)
	}

	// The cache answers the second run, for either token.
	if code, out, _ := runCmd(t, environ, append(args, "--id-token")...); code != 0 || out != "idt-x\n" {
		t.Errorf("cached --id-token = %d %q", code, out)
	}
	if s, p, _, _ := f.counts(); s != 1 || p != 1 {
		t.Errorf("after a cached run: %d device flows, %d polls; want 1, 1", s, p)
	}

	// An expired token is refreshed silently.
	expire(t, cacheFile())
	if code, out, errOut := runCmd(t, environ, args...); code != 0 || out != "at-xx\n" || errOut != "" {
		t.Errorf("refresh run = %d %q %q", code, out, errOut)
	}
	if s, _, r, _ := f.counts(); s != 1 || r != 1 {
		t.Errorf("after a refresh: %d device flows, %d refreshes; want 1, 1", s, r)
	}

	// --exec-credential decodes as client-go's ExecCredential.
	code, out, _ = runCmd(t, environ, append(args, "--exec-credential")...)
	var ec clientauthv1.ExecCredential
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ec); code != 0 || err != nil {
		t.Fatalf("exec credential = %d %v\n%s", code, err, out)
	}
	if ec.APIVersion != "client.authentication.k8s.io/v1" || ec.Kind != "ExecCredential" || ec.Status == nil ||
		ec.Status.Token != "idt-xx" || ec.Status.ExpirationTimestamp == nil ||
		time.Until(ec.Status.ExpirationTimestamp.Time) < 50*time.Minute {
		t.Errorf("exec credential = %+v", ec)
	}

	// --logout revokes the refresh token and forgets the cache.
	if code, _, errOut := runCmd(t, environ, append(args, "--logout")...); code != 0 || !strings.Contains(errOut, "signed out") {
		t.Errorf("logout = %d %q", code, errOut)
	}
	if _, _, _, v := f.counts(); v != 1 || f.revoked[0] != "rt-xx" {
		t.Errorf("revocations = %d %v, want [rt-xx]", v, f.revoked)
	}
	if m, _ := filepath.Glob(filepath.Join(cache, "ghbroker", "token-*.json")); len(m) != 0 {
		t.Errorf("cache left after logout: %v", m)
	}
}

// expire moves a cache file's expiry into the past.
func expire(t *testing.T, path string) {
	t.Helper()
	raw, _ := os.ReadFile(path)
	var c cachedToken
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	c.Expiry = time.Now().Add(-time.Minute)
	raw, _ = json.Marshal(c)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTokenBadCache: a cache file that is garbage, or that others may read,
// is named in one sentence and replaced by a fresh sign-in.
func TestTokenBadCache(t *testing.T) {
	f := newFakeDeviceIssuer(t)
	args := []string{"token", "--issuer", f.srv.URL, "--client-id", "cli", "--no-browser"}
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		says          string
	}{
		{"garbage", "not json {", 0o600, "is not a token cache ghbroker wrote"},
		{"empty object", "{}", 0o600, "is not a token cache ghbroker wrote"},
		{"readable by others", `{"issuer":"` + f.srv.URL + `","client_id":"cli","access_token":"stolen","expiry":"2999-01-01T00:00:00Z"}`, 0o644, "readable or writable by others (mode 0644"},
		{"another issuer", `{"issuer":"https://elsewhere","client_id":"cli","access_token":"a","expiry":"2999-01-01T00:00:00Z"}`, 0o600, "belongs to another issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			c := newTokenCache(filepath.Join(cache, "ghbroker"), f.srv.URL, "cli", "openid profile email groups offline_access")
			if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(c.path, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			_ = os.Chmod(c.path, tc.mode)
			code, out, errOut := runCmd(t, map[string]string{"XDG_CACHE_HOME": cache}, args...)
			if code != 0 || !strings.HasPrefix(out, "at-") {
				t.Fatalf("run = %d %q\n%s", code, out, errOut)
			}
			if !strings.Contains(errOut, tc.says) || strings.Count(errOut, "ignoring it") != 1 {
				t.Errorf("stderr does not say %q once:\n%s", tc.says, errOut)
			}
			if fi, err := os.Stat(c.path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("the new cache file: %v, %v", fi, err)
			}
		})
	}
}

func TestTokenUsage(t *testing.T) {
	if code, _, errOut := runCmd(t, nil, "token", "--client-id", "cli"); code != exitUsage || !strings.Contains(errOut, "--issuer and --client-id are required") {
		t.Errorf("no issuer = %d %q", code, errOut)
	}
	f := newFakeDeviceIssuer(t)
	code, _, errOut := runCmd(t, map[string]string{"XDG_CACHE_HOME": t.TempDir()}, "token", "--issuer", f.srv.URL, "--client-id", "nobody", "--no-browser")
	if code != exitRuntime || !strings.Contains(errOut, "invalid_client") {
		t.Errorf("unknown client = %d %q", code, errOut)
	}
}

// TestTokenClientSecret: a confidential client's secret, from a file, the
// environment or the flag, goes to /device/code, /token and /revoke the
// way discovery advertises: client_secret_basic when listed (or when
// nothing is), client_secret_post when only that is.
func TestTokenClientSecret(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "kube.secret")
	if err := os.WriteFile(secretFile, []byte(kubeSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		methods []string
		from    []string          // flags giving the secret
		environ map[string]string // besides the cache
		method  string            // what every endpoint must have seen
	}{
		{"basic from a file", []string{"client_secret_basic", "client_secret_post", "none"}, []string{"--client-secret-file", secretFile}, nil, "basic"},
		{"post only, from the environment", []string{"client_secret_post"}, nil, map[string]string{"GHBROKER_CLIENT_SECRET": kubeSecret}, "post"},
		{"nothing advertised, from the flag", nil, []string{"--client-secret", kubeSecret}, nil, "basic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDeviceIssuer(t, tc.methods...)
			environ := map[string]string{"XDG_CACHE_HOME": t.TempDir()}
			for k, v := range tc.environ {
				environ[k] = v
			}
			args := append([]string{"token", "--issuer", f.srv.URL, "--client-id", "kube", "--no-browser"}, tc.from...)
			if code, out, errOut := runCmd(t, environ, args...); code != 0 || out != "at-x\n" {
				t.Fatalf("run = %d %q\n%s", code, out, errOut)
			}
			expire(t, onlyCacheFile(t, environ["XDG_CACHE_HOME"]))
			if code, out, errOut := runCmd(t, environ, args...); code != 0 || out != "at-xx\n" {
				t.Fatalf("refresh = %d %q\n%s", code, out, errOut)
			}
			if code, _, errOut := runCmd(t, environ, append(args, "--logout")...); code != 0 || !strings.Contains(errOut, "signed out") || strings.Contains(errOut, "could not revoke") {
				t.Fatalf("logout = %d %q", code, errOut)
			}
			want := []string{"device " + tc.method, "token " + tc.method, "token " + tc.method, "revoke " + tc.method}
			if f.mu.Lock(); !slices.Equal(f.auth, want) {
				t.Errorf("requests authenticated as %v, want %v", f.auth, want)
			}
			f.mu.Unlock()
		})
	}
}

// onlyCacheFile returns the one token cache file under cache.
func onlyCacheFile(t *testing.T, cache string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(cache, "ghbroker", "token-*.json"))
	if len(m) != 1 {
		t.Fatalf("cache files: %v", m)
	}
	return m[0]
}

// TestTokenWrongClientSecret: a wrong secret is one sentence naming the
// client, never the secret, and exit 1; so is a missing one.
func TestTokenWrongClientSecret(t *testing.T) {
	f := newFakeDeviceIssuer(t)
	environ := map[string]string{"XDG_CACHE_HOME": t.TempDir()}
	base := []string{"token", "--issuer", f.srv.URL, "--client-id", "kube", "--no-browser"}
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"wrong secret", []string{"--client-secret", "not-the-secret-0123456789abcdef0123"}, `ghbroker: token: the issuer refused client "kube" with the secret given (invalid_client: client authentication failed); check --client-secret-file, GHBROKER_CLIENT_SECRET or --client-secret` + "\n"},
		{"no secret", nil, `ghbroker: token: the issuer refused client "kube" (invalid_client: client authentication failed); a confidential client needs its secret: --client-secret-file or GHBROKER_CLIENT_SECRET` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, environ, append(base, tc.args...)...)
			if code != exitRuntime || out != "" || errOut != tc.says {
				t.Errorf("exit %d, stdout %q, stderr\n%q\nwant exit 1 and stderr\n%q", code, out, errOut, tc.says)
			}
			if strings.Contains(errOut, "not-the-secret") {
				t.Error("stderr shows the secret")
			}
		})
	}
}

// TestTokenClientSecretSources: both flags at once, an unreadable or empty
// file are usage errors in one sentence; the environment wins over a flag,
// and says so.
func TestTokenClientSecretSources(t *testing.T) {
	f := newFakeDeviceIssuer(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("wrong"), 0o600)
	base := []string{"token", "--issuer", f.srv.URL, "--client-id", "kube", "--no-browser"}
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"both flags", []string{"--client-secret", "x", "--client-secret-file", wrong}, "give --client-secret or --client-secret-file, not both"},
		{"missing file", []string{"--client-secret-file", filepath.Join(dir, "nope")}, "cannot read --client-secret-file " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"empty file", []string{"--client-secret-file", empty}, "--client-secret-file " + empty + " is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, map[string]string{"XDG_CACHE_HOME": t.TempDir()}, append(base, tc.args...)...)
			if code != exitUsage || !strings.Contains(errOut, tc.says) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and one line saying %q", code, errOut, tc.says)
			}
		})
	}
	environ := map[string]string{"XDG_CACHE_HOME": t.TempDir(), "GHBROKER_CLIENT_SECRET": kubeSecret}
	code, out, errOut := runCmd(t, environ, append(base, "--client-secret-file", wrong)...)
	if code != 0 || out != "at-x\n" || !strings.Contains(errOut, "GHBROKER_CLIENT_SECRET is set: it wins over --client-secret-file") {
		t.Errorf("environment and file = %d %q %q; want the environment's secret used, and said", code, out, errOut)
	}
}

// lockedBuffer is a bytes.Buffer that a running command writes while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTokenClientSecretAtBroker runs `ghbroker token` for a confidential
// device client against a broker serving its real handlers: a wrong
// secret is refused at /device/code in one sentence; the right one (sent
// with client_secret_basic, which the broker's discovery lists first)
// starts the flow, and once the code is approved the poll gets tokens.
func TestTokenClientSecretAtBroker(t *testing.T) {
	const secret = "kube+secret/0123456789 abcdef0123456"
	dir, addr := t.TempDir(), freeAddr(t)
	secretFile := filepath.Join(dir, "kube.secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAppFrom(t, writeConfig(t, dir, addr, "clients:\n  - {id: kube, name: Kubernetes, secret_file: "+secretFile+", grant_types: [device_code]}\n"))
	args := []string{"token", "--issuer", "http://" + addr, "--client-id", "kube", "--scope", "openid", "--no-browser"}

	code, out, errOut := runCmd(t, map[string]string{"XDG_CACHE_HOME": t.TempDir(), "GHBROKER_CLIENT_SECRET": "wrong-secret-0123456789abcdef012345"}, args...)
	if want := `ghbroker: token: the issuer refused client "kube" with the secret given (invalid_client: client authentication failed); check --client-secret-file, GHBROKER_CLIENT_SECRET or --client-secret` + "\n"; code != exitRuntime || out != "" || errOut != want {
		t.Errorf("wrong secret: exit %d, stdout %q, stderr\n%q\nwant exit 1 and\n%q", code, out, errOut, want)
	}

	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	environ := map[string]string{"XDG_CACHE_HOME": t.TempDir()}
	e := env{stdout: &stdout, stderr: &stderr, lookupEnv: func(k string) (string, bool) { v, ok := environ[k]; return v, ok }}
	go func() { done <- run(ctx, e, append(args, "--client-secret-file", secretFile)) }()
	shown := regexp.MustCompile(`enter the code ([A-Z]{4}-[A-Z]{4})`)
	var userCode string
	for {
		if m := shown.FindStringSubmatch(stderr.String()); m != nil {
			userCode = strings.ReplaceAll(m[1], "-", "")
			break
		}
		select {
		case c := <-done:
			t.Fatalf("token exited %d before showing a code:\n%s", c, stderr.String())
		case <-ctx.Done():
			t.Fatalf("no code shown:\n%s", stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Approve it as the /device page would, for a signed-in session.
	now := time.Now()
	sess := store.Session{ID: "sid-kube", Subject: "583231", Login: "octocat", AuthTime: now, Renewed: now, Expires: now.Add(time.Hour)}
	if err := a.store.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	dc, err := a.store.GetDeviceCodeByUserCode(ctx, userCode)
	if err != nil || dc.ClientID != "kube" {
		t.Fatalf("the code shown: %+v, %v", dc, err)
	}
	if err := a.store.UpdateDeviceCode(ctx, dc.ID, func(c store.DeviceCode) (store.DeviceCode, error) {
		c.Status, c.SessionID = store.DeviceApproved, sess.ID
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	if c := <-done; c != 0 {
		t.Fatalf("token exited %d:\n%s", c, stderr.String())
	}
	parts := strings.Split(strings.TrimSpace(stdout.String()), ".")
	if len(parts) != 3 {
		t.Fatalf("stdout %q is not a JWT", stdout.String())
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !strings.Contains(string(payload), `"client_id":"kube"`) {
		t.Errorf("access token payload %s (%v), want client_id kube", payload, err)
	}
}
