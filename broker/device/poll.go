package device

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ghbroker/ghbroker/broker/internal/oauth"
	"github.com/ghbroker/ghbroker/broker/internal/secret"
	"github.com/ghbroker/ghbroker/store"
)

// pollSlack forgives a poll that arrives this much early: network jitter
// moves arrival times, and a client that waits its interval should never
// be told to slow down.
const pollSlack = time.Second

// The poll answers of RFC 8628 §3.5.
func errPending() *oauth.Error {
	return &oauth.Error{Code: "authorization_pending", Description: "the user has not approved the request yet", Status: http.StatusBadRequest}
}

func errSlowDown(interval int) *oauth.Error {
	return &oauth.Error{Code: "slow_down", Description: "polling too fast; wait " + strconv.Itoa(interval) + " seconds between polls", Status: http.StatusBadRequest}
}

func errDenied() *oauth.Error {
	return &oauth.Error{Code: "access_denied", Description: "the user denied the request", Status: http.StatusBadRequest}
}

func errExpired() *oauth.Error {
	return &oauth.Error{Code: "expired_token", Description: "the device code has expired; start again", Status: http.StatusBadRequest}
}

// Redeem answers one poll of the token endpoint (RFC 8628 §3.4, §3.5) for
// the authenticated client clientID. It reads and changes the record in one
// store transaction: a poll sooner than the code's interval answers
// slow_down and adds SlowDownStep seconds to it; a pending code answers
// authorization_pending, a denied one access_denied, one past its deadline
// expired_token; an approved code is marked redeemed and returned, so a
// device code yields tokens once. Every error is an *oauth.Error.
func (h *Handler) Redeem(ctx context.Context, clientID, deviceCode string) (store.DeviceCode, error) {
	now := h.now()
	var (
		got    store.DeviceCode
		answer *oauth.Error
	)
	err := h.store.UpdateDeviceCode(ctx, secret.Hash(deviceCode), func(c store.DeviceCode) (store.DeviceCode, error) {
		answer = nil
		switch {
		case c.ClientID != clientID:
			// Not this client's code: change nothing.
			return c, oauth.InvalidGrant("the device code was issued to another client")
		case !now.Before(c.Deadline):
			return c, errExpired()
		case c.Status == store.DeviceRedeemed:
			return c, oauth.InvalidGrant("the device code was already used")
		}
		tooSoon := !c.LastPoll.IsZero() && now.Sub(c.LastPoll) < time.Duration(c.Interval)*time.Second-pollSlack
		c.LastPoll = now
		switch {
		case tooSoon:
			c.Interval += SlowDownStep
			answer = errSlowDown(c.Interval)
		case c.Status == store.DevicePending:
			answer = errPending()
		case c.Status == store.DeviceDenied:
			answer = errDenied()
		case c.Status == store.DeviceApproved:
			c.Status = store.DeviceRedeemed
			got = c
		default:
			return c, errors.New("device: unknown status " + string(c.Status))
		}
		return c, nil
	})
	if oe, ok := errors.AsType[*oauth.Error](err); ok {
		return store.DeviceCode{}, oe
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.DeviceCode{}, oauth.InvalidGrant("the device code is invalid or expired")
	case err != nil:
		return store.DeviceCode{}, err
	case answer != nil:
		return store.DeviceCode{}, answer
	}
	h.log.Info("device code redeemed", "client", clientID)
	return got, nil
}
