// Package admin is the local control channel of a running `ghbroker serve`:
// an HTTP API on a Unix socket beside the store file (mode 0600, never a
// network port). bbolt lets one process hold the store, so commands that
// change state while the server runs (`ghbroker keys rotate`) ask the server
// over this socket instead of opening the file.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ghbroker/ghbroker/store"
)

// SocketPath is the admin socket for the store file at storePath.
func SocketPath(storePath string) string { return storePath + ".admin.sock" }

// KeyRotator is what the admin API needs from the key manager.
type KeyRotator interface {
	Rotate(ctx context.Context, force bool) (bool, error)
	Keys() store.Keys
}

// SessionAdmin is what the admin API needs from the sessions
// (*session.Manager).
type SessionAdmin interface {
	Sessions(ctx context.Context, login string) ([]store.Session, error)
	Revoke(ctx context.Context, login, id string) (int, error)
}

// Handler serves the admin API.
type Handler struct {
	Keys     KeyRotator
	Sessions SessionAdmin
	Logger   *slog.Logger
}

// ServeHTTP serves GET /v1/keys, POST /v1/keys/rotate, GET
// /v1/sessions?user= and POST /v1/sessions/revoke?user=|session=.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/sessions") && h.Sessions != nil {
		h.serveSessions(w, r)
		return
	}
	switch {
	case r.URL.Path == "/v1/keys" && r.Method == http.MethodGet:
	case r.URL.Path == "/v1/keys/rotate" && r.Method == http.MethodPost:
		if _, err := h.Keys.Rotate(r.Context(), true); err != nil {
			if h.Logger != nil {
				h.Logger.Error("admin: key rotation failed", "err", err)
			}
			http.Error(w, "rotation failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Public(h.Keys.Keys()))
}

func (h *Handler) serveSessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var out SessionList
	switch {
	case r.URL.Path == "/v1/sessions" && r.Method == http.MethodGet:
		ss, err := h.Sessions.Sessions(r.Context(), q.Get("user"))
		if err != nil {
			http.Error(w, "listing sessions failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		out.Sessions = PublicSessions(ss)
	case r.URL.Path == "/v1/sessions/revoke" && r.Method == http.MethodPost:
		n, err := h.Sessions.Revoke(r.Context(), q.Get("user"), q.Get("session"))
		if err != nil {
			http.Error(w, "revoking failed: "+err.Error(), http.StatusBadRequest)
			return
		}
		out.Revoked = n
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// SessionInfo describes a session without its secrets.
type SessionInfo struct {
	ID       string    `json:"id"`
	Login    string    `json:"login"`
	Subject  string    `json:"sub"`
	AuthTime time.Time `json:"auth_time"`
	Renewed  time.Time `json:"renewed"`
	Expires  time.Time `json:"expires"`
	Groups   []string  `json:"groups,omitempty"`
	// SignedOut is when the person signed out (the record stays for
	// offline_access refresh tokens).
	SignedOut time.Time `json:"signed_out,omitzero"`
}

// SessionList is the answer of the sessions endpoints.
type SessionList struct {
	Sessions []SessionInfo `json:"sessions,omitempty"`
	Revoked  int           `json:"revoked,omitempty"`
}

// PublicSessions describes ss without their secrets or GitHub tokens.
func PublicSessions(ss []store.Session) []SessionInfo {
	out := make([]SessionInfo, 0, len(ss))
	for _, s := range ss {
		out = append(out, SessionInfo{ID: s.ID, Login: s.Login, Subject: s.Subject, AuthTime: s.AuthTime, Renewed: s.Renewed, Expires: s.Expires, Groups: s.Groups, SignedOut: s.SignedOut})
	}
	return out
}

// Sessions lists the running server's sessions of login ("" for all).
func (c *Client) Sessions(ctx context.Context, login string) ([]SessionInfo, error) {
	var out SessionList
	err := c.call(ctx, http.MethodGet, "/v1/sessions?"+url.Values{"user": {login}}.Encode(), &out)
	return out.Sessions, err
}

// Revoke asks the running server to revoke the sessions of login, or the
// session id.
func (c *Client) Revoke(ctx context.Context, login, id string) (int, error) {
	var out SessionList
	q := url.Values{}
	if login != "" {
		q.Set("user", login)
	}
	if id != "" {
		q.Set("session", id)
	}
	err := c.call(ctx, http.MethodPost, "/v1/sessions/revoke?"+q.Encode(), &out)
	return out.Revoked, err
}

// Listen opens the admin socket at path with mode 0600, replacing a stale
// socket left by a process that died. The caller holds the store lock, so
// no live server can own the old socket.
func Listen(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("admin: remove stale socket %s: %w", path, err)
	}
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin: chmod %s: %w", path, err)
	}
	return l, nil
}

// ErrNoServer means no server answers on the admin socket.
var ErrNoServer = errors.New("admin: no running server")

// Client talks to a running server's admin socket.
type Client struct {
	http *http.Client
}

// Dial returns a client for the socket at path, or ErrNoServer when nothing
// listens there.
func Dial(path string) (*Client, error) {
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w on %s", ErrNoServer, path)
	}
	conn.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

// Keys returns the server's key set.
func (c *Client) Keys(ctx context.Context) (KeySet, error) {
	return c.do(ctx, http.MethodGet, "/v1/keys")
}

// Rotate asks the server to rotate its keys now and returns the new set.
func (c *Client) Rotate(ctx context.Context) (KeySet, error) {
	return c.do(ctx, http.MethodPost, "/v1/keys/rotate")
}

func (c *Client) do(ctx context.Context, method, path string) (KeySet, error) {
	var ks KeySet
	err := c.call(ctx, method, path, &ks)
	return ks, err
}

// call sends one request and decodes its JSON answer into out.
func (c *Client) call(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://admin"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin: %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin: %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin: %s: server answered %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("admin: %s: %w", path, err)
	}
	return nil
}

// KeyInfo describes one key without its private part.
type KeyInfo struct {
	State     string    `json:"state"` // current, next or previous
	KID       string    `json:"kid"`
	Algorithm string    `json:"alg"`
	Created   time.Time `json:"created"`
	// Until is when a previous key leaves the JWKS, or when the next key
	// starts signing.
	Until time.Time `json:"until,omitzero"`
}

// KeySet is the public view of a key set.
type KeySet struct {
	Keys []KeyInfo `json:"keys"`
}

// Public describes k without private key material.
func Public(k store.Keys) KeySet {
	var ks KeySet
	if k.Current != nil {
		ks.Keys = append(ks.Keys, KeyInfo{State: "current", KID: k.Current.KID, Algorithm: k.Current.Algorithm, Created: k.Current.Created, Until: k.NextRotation})
	}
	if k.Next != nil {
		ks.Keys = append(ks.Keys, KeyInfo{State: "next", KID: k.Next.KID, Algorithm: k.Next.Algorithm, Created: k.Next.Created, Until: k.NextRotation})
	}
	for _, p := range k.Previous {
		ks.Keys = append(ks.Keys, KeyInfo{State: "previous", KID: p.KID, Algorithm: p.Algorithm, Created: p.Created, Until: p.Expires})
	}
	return ks
}
