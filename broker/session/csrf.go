package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// csrfKeyName names the key, kept in the store and so shared by every
// replica, under which forms of signed-in people are bound to their session.
const csrfKeyName = "session-csrf-v1"

// Form purposes: a token made for one form is refused by another.
const (
	// FormDeviceApproval is the device flow's Approve/Deny form.
	FormDeviceApproval = "device approval"
	// FormLogout is the sign-out confirmation.
	FormLogout = "logout"
)

func loadCSRFKey(ctx context.Context, st Store) ([]byte, error) {
	key, err := st.GetOrCreateSecret(ctx, csrfKeyName, func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("session: CSRF key: %w", err)
	}
	if len(key) != 32 {
		return nil, errors.New("session: CSRF key has the wrong size")
	}
	return key, nil
}

// CSRFToken is the token a form for purpose carries for the session
// sessionID: an HMAC under a key only the broker holds, so that it is bound
// to the browser's session and no page elsewhere can make one up.
func (m *Manager) CSRFToken(purpose, sessionID string) string {
	mac := hmac.New(sha256.New, m.csrfKey)
	mac.Write([]byte("ghbroker " + purpose + "\x00" + sessionID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// CSRFValid reports, in constant time, whether token is CSRFToken(purpose,
// sessionID).
func (m *Manager) CSRFValid(purpose, sessionID, token string) bool {
	return sessionID != "" && hmac.Equal([]byte(m.CSRFToken(purpose, sessionID)), []byte(token))
}
