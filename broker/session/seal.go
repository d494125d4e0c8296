package session

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// sealKeyName names the AES-256 key, kept in the store, that seals GitHub
// tokens at rest.
const sealKeyName = "github-token-seal-v1"

// sealer encrypts GitHub tokens with AES-256-GCM before they reach the
// store, binding each ciphertext to its session id. With a key given
// outside the store it seals with that key, and still opens what the store
// key sealed before (those sessions end within session.max_age).
type sealer struct {
	aead cipher.AEAD
	old  cipher.AEAD // the store's key when an outside key seals; else nil
}

func newSealer(ctx context.Context, st interface {
	GetOrCreateSecret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error)
}, outside []byte) (*sealer, error) {
	inStore, err := storeSealer(ctx, st)
	if err != nil || outside == nil {
		return inStore, err
	}
	a, err := newAEAD(outside)
	if err != nil {
		return nil, fmt.Errorf("session: seal key: %w", err)
	}
	return &sealer{aead: a, old: inStore.aead}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, errors.New("the key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func storeSealer(ctx context.Context, st interface {
	GetOrCreateSecret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error)
}) (*sealer, error) {
	key, err := st.GetOrCreateSecret(ctx, sealKeyName, func() ([]byte, error) {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("session: token sealing key: %w", err)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, fmt.Errorf("session: token sealing key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// seal encrypts plaintext; sessionID is authenticated but not stored.
func (s *sealer) seal(plaintext, sessionID string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, []byte(plaintext), []byte(sessionID))
}

// open decrypts what seal produced for the same sessionID.
func (s *sealer) open(ciphertext []byte, sessionID string) (string, error) {
	n := s.aead.NonceSize()
	if len(ciphertext) < n {
		return "", errors.New("session: sealed token too short")
	}
	pt, err := s.aead.Open(nil, ciphertext[:n], ciphertext[n:], []byte(sessionID))
	if err != nil && s.old != nil {
		pt, err = s.old.Open(nil, ciphertext[:n], ciphertext[n:], []byte(sessionID))
	}
	if err != nil {
		return "", errors.New("session: sealed token does not open")
	}
	return string(pt), nil
}

// ParseSealKey reads a token-sealing key given outside the store: 64 hex
// digits, or 32 bytes in standard or URL-safe base64.
func ParseSealKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if k, err := hex.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	return nil, errors.New("the seal key must be 32 bytes: 64 hex digits (openssl rand -hex 32) or base64 (openssl rand -base64 32)")
}
