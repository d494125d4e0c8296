package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// cachedToken is what `ghbroker token` keeps between runs, one file per
// issuer, client and scope under $XDG_CACHE_HOME/ghbroker/, mode 0600.
type cachedToken struct {
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"client_id"`
	Scope        string    `json:"scope"`
	AccessToken  string    `json:"access_token"`
	IDToken      string    `json:"id_token,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry"`
}

// tokenCache is one cache file.
type tokenCache struct {
	path string
}

// newTokenCache names the cache file of (issuer, client, scope) in dir.
func newTokenCache(dir, issuer, clientID, scope string) tokenCache {
	sum := sha256.Sum256([]byte(issuer + "\x00" + clientID + "\x00" + scope))
	return tokenCache{path: filepath.Join(dir, "token-"+hex.EncodeToString(sum[:8])+".json")}
}

// errNoCache means there is no usable cache file; the reason, if any, has
// been given.
var errNoCache = errors.New("no cached token")

// load reads the cache. A file others can read or write, or one that does
// not parse or belongs to another issuer or client, is not used: load says
// so in one sentence (warn), removes it, and returns errNoCache, so that
// the caller signs in afresh.
func (c tokenCache) load(issuer, clientID string, warn func(string)) (cachedToken, error) {
	fi, err := os.Lstat(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return cachedToken{}, errNoCache
	}
	if err != nil {
		return cachedToken{}, fmt.Errorf("token cache: %w", err)
	}
	discard := func(why string) (cachedToken, error) {
		warn(fmt.Sprintf("the token cache %s %s; ignoring it and signing in again", c.path, why))
		_ = os.Remove(c.path)
		return cachedToken{}, errNoCache
	}
	if !fi.Mode().IsRegular() {
		return discard("is not a regular file")
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return discard(fmt.Sprintf("is readable or writable by others (mode %04o, want 0600)", fi.Mode().Perm()))
	}
	raw, err := os.ReadFile(c.path)
	if err != nil {
		return cachedToken{}, fmt.Errorf("token cache: %w", err)
	}
	var t cachedToken
	if err := json.Unmarshal(raw, &t); err != nil || t.AccessToken == "" {
		return discard("is not a token cache ghbroker wrote")
	}
	if t.Issuer != issuer || t.ClientID != clientID {
		return discard("belongs to another issuer or client")
	}
	return t, nil
}

// save writes the cache atomically, mode 0600, in a 0700 directory.
func (c tokenCache) save(t cachedToken) error {
	dir := filepath.Dir(c.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	f, err := os.CreateTemp(dir, ".token-*")
	if err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("token cache: %w", err)
	}
	if _, err := f.Write(raw); err != nil {
		f.Close()
		return fmt.Errorf("token cache: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	if err := os.Rename(f.Name(), c.path); err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	return nil
}

// remove forgets the cache.
func (c tokenCache) remove() error {
	if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("token cache: %w", err)
	}
	return nil
}
