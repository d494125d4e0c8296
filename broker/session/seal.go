package session

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealKeyName names the AES-256 key, kept in the store, that seals GitHub
// tokens at rest.
const sealKeyName = "github-token-seal-v1"

// sealer encrypts GitHub tokens with AES-256-GCM before they reach the
// store, binding each ciphertext to its session id.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(ctx context.Context, st interface {
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
	if len(key) != 32 {
		return nil, errors.New("session: token sealing key has the wrong size")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
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
	if err != nil {
		return "", errors.New("session: sealed token does not open")
	}
	return string(pt), nil
}
