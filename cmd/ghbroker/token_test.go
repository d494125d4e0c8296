package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"
)

// fakeDeviceIssuer is a minimal RFC 8628 issuer: every device code is
// approved at its first poll, and it counts what it was asked.
type fakeDeviceIssuer struct {
	srv *httptest.Server

	mu                                sync.Mutex
	starts, polls, refreshes, revokes int
	serial                            int
	revoked                           []string
}

func newFakeDeviceIssuer(t *testing.T) *fakeDeviceIssuer {
	f := &fakeDeviceIssuer{}
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
		js(w, 200, map[string]string{"issuer": iss, "token_endpoint": iss + "/token",
			"device_authorization_endpoint": iss + "/device/code", "revocation_endpoint": iss + "/revoke"})
	})
	mux.HandleFunc("POST /device/code", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.starts++
		f.mu.Unlock()
		if r.FormValue("client_id") != "cli" {
			js(w, 401, map[string]string{"error": "invalid_client"})
			return
		}
		js(w, 200, map[string]any{"device_code": "dc", "user_code": "BCDF-GHJK", "verification_uri": iss + "/device",
			"verification_uri_complete": iss + "/device?user_code=BCDF-GHJK", "expires_in": 600, "interval": 1})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
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
