package signin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ghbroker/ghbroker/store"
)

// A pending sign-in (the state, PKCE verifier and return address of a
// GitHub round trip) travels sealed in a short-lived cookie of its own, so
// that nothing an anonymous request sends is written to the store and a
// /callback may land on another replica than its /login. The cookie is the
// browser binding: a state that arrives without it was started elsewhere.
//
// The sealing key rotates every statePeriod; it is kept in the store
// (created once per period by whichever replica needs it first) and the
// previous period's key still opens, so a sign-in begun just before a
// rotation completes.
const (
	statePeriod = 24 * time.Hour
	// stateIDLen is how much of the state names its cookie.
	stateIDLen = 10
	// maxPending bounds the sign-ins one browser may have under way; the
	// oldest are dropped beyond it.
	maxPending = 3
	// maxStateCookie is the largest sealed state we set (browsers keep
	// about 4 KB per cookie, name and attributes included).
	maxStateCookie = 3800
)

// pendingSignIn is what a state cookie carries.
type pendingSignIn struct {
	State      string `json:"s"`
	Verifier   string `json:"v"`
	RedirectTo string `json:"r"`
	Expires    int64  `json:"e"`
}

// stateSealer seals pending sign-ins with AES-256-GCM under a key of the
// current period.
type stateSealer struct {
	store store.SecretStore
	mu    sync.Mutex
	aeads map[int64]cipher.AEAD // by period number
}

func newStateSealer(st store.SecretStore) *stateSealer {
	return &stateSealer{store: st, aeads: map[int64]cipher.AEAD{}}
}

func periodOf(t time.Time) int64 { return t.Unix() / int64(statePeriod/time.Second) }

// aead returns the key of period n, creating it in the store when create
// is set.
func (s *stateSealer) aead(ctx context.Context, n int64, create bool) (cipher.AEAD, error) {
	s.mu.Lock()
	a, ok := s.aeads[n]
	s.mu.Unlock()
	if ok {
		return a, nil
	}
	if !create {
		return nil, errors.New("signin: no state key for that period")
	}
	key, err := s.store.GetOrCreateSecret(ctx, "signin-state-v1-"+strconv.FormatInt(n, 10), func() ([]byte, error) {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("signin: state key: %w", err)
	}
	if len(key) != 32 {
		return nil, errors.New("signin: state key has the wrong size")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a, err = cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.aeads {
		if k < n-1 {
			delete(s.aeads, k) // keep the current and previous periods only
		}
	}
	s.aeads[n] = a
	return a, nil
}

// seal encrypts p for the cookie named name: "period.base64(nonce|ct)".
func (s *stateSealer) seal(ctx context.Context, now time.Time, name string, p pendingSignIn) (string, error) {
	n := periodOf(now)
	a, err := s.aead(ctx, n, true)
	if err != nil {
		return "", err
	}
	pt, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	ct := a.Seal(nonce, nonce, pt, []byte(name))
	return strconv.FormatInt(n, 10) + "." + base64.RawURLEncoding.EncodeToString(ct), nil
}

// open decrypts a cookie value sealed for name; only the current and the
// previous period's keys open.
func (s *stateSealer) open(ctx context.Context, now time.Time, name, value string) (pendingSignIn, error) {
	var p pendingSignIn
	ps, b64, ok := strings.Cut(value, ".")
	n, err := strconv.ParseInt(ps, 10, 64)
	cur := periodOf(now)
	if !ok || err != nil || (n != cur && n != cur-1) || len(value) > maxStateCookie {
		return p, errors.New("signin: state cookie is not ours")
	}
	ct, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return p, errors.New("signin: state cookie is not ours")
	}
	a, err := s.aead(ctx, n, true)
	if err != nil {
		return p, err
	}
	if len(ct) < a.NonceSize() {
		return p, errors.New("signin: state cookie is not ours")
	}
	pt, err := a.Open(nil, ct[:a.NonceSize()], ct[a.NonceSize():], []byte(name))
	if err != nil || json.Unmarshal(pt, &p) != nil {
		return p, errors.New("signin: state cookie is not ours")
	}
	return p, nil
}

// stateCookiePrefix names the state cookies: __Host- on an https issuer,
// so that no sibling subdomain can plant one.
func (h *Handler) stateCookiePrefix() string {
	base := strings.TrimPrefix(h.sessions.CookieName(), "_")
	if h.secure {
		return "__Host-" + base + "_state."
	}
	return "_" + base + "_state."
}

// stateCookieName is the cookie of one pending sign-in, named after its
// state.
func (h *Handler) stateCookieName(state string) string {
	return h.stateCookiePrefix() + state[:stateIDLen]
}

// savePending seals p into its cookie, dropping the browser's older
// pending sign-ins beyond maxPending.
func (h *Handler) savePending(w http.ResponseWriter, r *http.Request, p pendingSignIn) error {
	var old []string
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, h.stateCookiePrefix()) && len(old) < 2*maxPending {
			old = append(old, c.Name)
		}
	}
	if len(old) >= maxPending {
		for _, n := range old {
			http.SetCookie(w, h.sessions.HostCookie(n, "", 0))
		}
	}
	name := h.stateCookieName(p.State)
	v, err := h.states.seal(r.Context(), h.now(), name, p)
	if err != nil {
		return err
	}
	if len(v) > maxStateCookie {
		// An oversized return address: sign in, then land on the home page.
		p.RedirectTo = h.issuer + "/"
		if v, err = h.states.seal(r.Context(), h.now(), name, p); err != nil {
			return err
		}
	}
	http.SetCookie(w, h.sessions.HostCookie(name, v, loginStateTTL))
	return nil
}

// takePending opens the cookie of state and expires it (single use). The
// error says which page to show.
func (h *Handler) takePending(w http.ResponseWriter, r *http.Request, state string) (pendingSignIn, error) {
	name := h.stateCookieName(state)
	c, err := r.Cookie(name)
	if err != nil {
		return pendingSignIn{}, errNoPending
	}
	http.SetCookie(w, h.sessions.HostCookie(name, "", 0))
	now := h.now()
	p, err := h.states.open(r.Context(), now, name, c.Value)
	if err != nil {
		return p, errNoPending
	}
	if subtle.ConstantTimeCompare([]byte(p.State), []byte(state)) != 1 || now.Unix() > p.Expires {
		return p, errNoPending
	}
	return p, nil
}

var errNoPending = errors.New("signin: no pending sign-in for this state")
