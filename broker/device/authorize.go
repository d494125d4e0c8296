package device

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/ghbroker/ghbroker/broker/internal/oauth"
	"github.com/ghbroker/ghbroker/broker/internal/secret"
	"github.com/ghbroker/ghbroker/store"
)

// authorization is the device authorization response (RFC 8628 §3.2).
type authorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// authorize is the device authorization endpoint (RFC 8628 §3.1): the
// client authenticates as at /token (a public client names itself), and
// must list the device_code grant.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	out, err := h.start(w, r)
	if err != nil {
		oauth.WriteError(w, r, h.log, h.issuer, err)
		return
	}
	oauth.WriteJSON(w, http.StatusOK, out)
}

func (h *Handler) start(w http.ResponseWriter, r *http.Request) (authorization, error) {
	form, err := oauth.ReadForm(w, r)
	if err != nil {
		return authorization{}, err
	}
	c, err := h.clients.Authenticate(r, form)
	if err != nil {
		return authorization{}, err
	}
	if !c.AllowsGrant(oauth.GrantDeviceCode) {
		return authorization{}, oauth.UnauthorizedClient("this client may not use the device authorization grant")
	}
	scope := form.Get("scope")
	if scope == "" {
		scope = "openid"
	}
	scopes, oe := c.RequestedScopes(scope)
	if oe != nil {
		return authorization{}, oe
	}
	if wait, ok := h.issued.take(); !ok {
		return authorization{}, &oauth.Error{Code: "temporarily_unavailable", Description: "too many device authorizations right now; retry in a moment",
			Status: http.StatusTooManyRequests, RetryAfter: max(wait, time.Second)}
	}
	deviceCode, userCode, err := h.create(r.Context(), c.ID, scopes)
	if err != nil {
		return authorization{}, err
	}
	shown := formatUserCode(userCode)
	h.log.Info("device authorization started", "client", c.ID)
	return authorization{
		DeviceCode: deviceCode, UserCode: shown,
		VerificationURI:         h.issuer + "/device",
		VerificationURIComplete: h.issuer + "/device?" + url.Values{"user_code": {shown}}.Encode(),
		ExpiresIn:               int(CodeTTL.Seconds()), Interval: Interval,
	}, nil
}

// create stores a new pending authorization, drawing another user code on
// the rare collision with a live one.
func (h *Handler) create(ctx context.Context, clientID string, scopes []string) (deviceCode, userCode string, err error) {
	now := h.now()
	for range 5 {
		deviceCode, userCode = secret.Random(32), newUserCode() // 256 bits; 20^8 codes
		err = h.store.CreateDeviceCode(ctx, store.DeviceCode{
			ID: secret.Hash(deviceCode), UserCode: userCode, ClientID: clientID, Scopes: scopes,
			Status: store.DevicePending, Interval: Interval,
			Deadline: now.Add(CodeTTL), Expires: now.Add(CodeTTL + retention),
		})
		if !errors.Is(err, store.ErrAlreadyExists) {
			break
		}
	}
	if err != nil {
		return "", "", err
	}
	return deviceCode, userCode, nil
}
