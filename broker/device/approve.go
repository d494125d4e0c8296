package device

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ghbroker/ghbroker/broker/session"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/web"
)

// refusal is why the page cannot go on with an entered code.
type refusal struct {
	status int
	msg    string
}

// page is /device (RFC 8628 §3.3): GET shows the code entry form, or, with
// user_code (verification_uri_complete), the request to approve; POST
// approves or denies it. Only a signed-in person gets here: anyone else is
// sent to /login first, which renews an SSO session without a GitHub round
// trip when it can.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	sess := h.sessions.Current(r)
	if sess == nil || sess.SessionID == "" {
		h.toLogin(w, r)
		return
	}
	if r.Method == http.MethodPost {
		h.decide(w, r, sess)
		return
	}
	data := web.Device{Login: sess.PreferredUsername, CSRF: h.sessions.CSRFToken(session.FormDeviceApproval, sess.SessionID)}
	raw := r.URL.Query().Get("user_code")
	if raw == "" {
		h.render(w, r, http.StatusOK, data)
		return
	}
	c, ref := h.lookup(sess.SessionID, r, raw)
	if ref != nil {
		data.UserCode, data.Message = raw, ref.msg
		h.renderRefusal(w, r, ref, data)
		return
	}
	h.confirmPage(w, r, data, c)
}

// toLogin sends a signed-out person to /login, returning to the code they
// were given (when it looks like one).
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request) {
	rd := "/device"
	raw := r.URL.Query().Get("user_code")
	if r.Method == http.MethodPost {
		raw = r.PostFormValue("user_code")
	}
	if code, ok := normaliseUserCode(raw); ok {
		rd += "?" + url.Values{"user_code": {formatUserCode(code)}}.Encode()
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, h.issuer+"/login?"+url.Values{"rd": {rd}}.Encode(), http.StatusSeeOther)
}

// lookup finds the live record of an entered code. A well-formed code that
// matches nothing spends the session's guess budget; a session over budget
// is refused before the store is asked.
func (h *Handler) lookup(sessionID string, r *http.Request, raw string) (store.DeviceCode, *refusal) {
	code, ok := normaliseUserCode(raw)
	if !ok {
		return store.DeviceCode{}, &refusal{http.StatusBadRequest, "That is not a code: a code is 8 letters, like BCDF-GHJK."}
	}
	if !h.guesses.allowed(sessionID) {
		return store.DeviceCode{}, &refusal{http.StatusTooManyRequests, "Too many wrong codes. Wait a few minutes, then check the code on your device and try again."}
	}
	c, err := h.store.GetDeviceCodeByUserCode(r.Context(), code)
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.guesses.wrong(sessionID)
		h.log.Info("wrong device user code entered", "sid", sessionID)
		return c, &refusal{http.StatusNotFound, "No sign-in request has that code. Check the code on your device and try again."}
	case err != nil:
		h.log.Error("reading a device code failed", "err", err)
		return c, &refusal{http.StatusInternalServerError, "ghbroker could not look the code up. Please try again."}
	}
	if ref := h.stateRefusal(c); ref != nil {
		return c, ref
	}
	return c, nil
}

// stateRefusal says why a found code can no longer be approved.
func (h *Handler) stateRefusal(c store.DeviceCode) *refusal {
	switch {
	case !h.now().Before(c.Deadline):
		return &refusal{http.StatusGone, "This code has expired. Start the sign-in on your device again to get a new one."}
	case c.Status == store.DeviceApproved || c.Status == store.DeviceRedeemed:
		return &refusal{http.StatusGone, "This code was already used. Start the sign-in on your device again if you need to."}
	case c.Status == store.DeviceDenied:
		return &refusal{http.StatusGone, "This request was denied. Start the sign-in on your device again if that was a mistake."}
	}
	return nil
}

// confirmPage shows who asks for what, with Approve and Deny.
func (h *Handler) confirmPage(w http.ResponseWriter, r *http.Request, data web.Device, c store.DeviceCode) {
	data.Confirm, data.UserCode, data.Scopes = true, formatUserCode(c.UserCode), c.Scopes
	data.ClientName = c.ClientID
	if cl, ok := h.clients.Lookup(c.ClientID); ok {
		data.ClientName = cl.DisplayName()
	}
	data.ExpiresIn = pageDuration(c.Deadline.Sub(h.now()))
	h.render(w, r, http.StatusOK, data)
}

// decide is the approval form's POST: a CSRF token bound to the session,
// the code, and approve or deny.
func (h *Handler) decide(w http.ResponseWriter, r *http.Request, sess *claims.Claims) {
	data := web.Device{Login: sess.PreferredUsername, CSRF: h.sessions.CSRFToken(session.FormDeviceApproval, sess.SessionID)}
	if err := r.ParseForm(); err != nil {
		data.Message = "The form could not be read. Please enter the code again."
		h.render(w, r, http.StatusBadRequest, data)
		return
	}
	if !h.sessions.CSRFValid(session.FormDeviceApproval, sess.SessionID, r.PostForm.Get("csrf")) {
		data.Message = "This form has expired or did not come from ghbroker. Please enter the code again."
		h.render(w, r, http.StatusForbidden, data)
		return
	}
	action := r.PostForm.Get("action")
	if action != "approve" && action != "deny" {
		data.Message = "Choose Approve or Deny."
		h.render(w, r, http.StatusBadRequest, data)
		return
	}
	raw := r.PostForm.Get("user_code")
	c, ref := h.lookup(sess.SessionID, r, raw)
	if ref != nil {
		data.UserCode, data.Message = raw, ref.msg
		h.renderRefusal(w, r, ref, data)
		return
	}
	if _, err := h.sessions.Get(r.Context(), sess.SessionID); err != nil {
		h.toLogin(w, r)
		return
	}
	now := h.now()
	var late *refusal
	err := h.store.UpdateDeviceCode(r.Context(), c.ID, func(c store.DeviceCode) (store.DeviceCode, error) {
		late = nil
		if !now.Before(c.Deadline) || c.Status != store.DevicePending {
			late = h.stateRefusal(c)
			return c, errDecided
		}
		if action == "approve" {
			c.Status, c.SessionID = store.DeviceApproved, sess.SessionID
		} else {
			c.Status = store.DeviceDenied
		}
		return c, nil
	})
	switch {
	case errors.Is(err, errDecided) && late != nil:
		data.UserCode, data.Message = formatUserCode(c.UserCode), late.msg
		h.renderRefusal(w, r, late, data)
		return
	case errors.Is(err, store.ErrNotFound):
		data.Message = "This code has expired. Start the sign-in on your device again to get a new one."
		h.render(w, r, http.StatusGone, data)
		return
	case err != nil:
		h.pages.Internal(w, r, "recording your decision", err)
		return
	}
	h.log.Info("device authorization decided", "client", c.ClientID, "sub", sess.Subject, "action", action)
	data.Done, data.Approved, data.UserCode = true, action == "approve", formatUserCode(c.UserCode)
	data.ClientName = c.ClientID
	if cl, ok := h.clients.Lookup(c.ClientID); ok {
		data.ClientName = cl.DisplayName()
	}
	h.render(w, r, http.StatusOK, data)
}

// errDecided aborts the decision of a code that is no longer pending.
var errDecided = errors.New("device: code no longer pending")

func (h *Handler) renderRefusal(w http.ResponseWriter, r *http.Request, ref *refusal, data web.Device) {
	if ref.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "120")
	}
	h.render(w, r, ref.status, data)
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, data web.Device) {
	h.pages.Render(w, r, status, "device.html", data)
}

// pageDuration rounds a remaining time for people.
func pageDuration(d time.Duration) string {
	if d < time.Minute {
		return "less than a minute"
	}
	m := int(d.Round(time.Minute) / time.Minute)
	if m == 1 {
		return "1 minute"
	}
	return strconv.Itoa(m) + " minutes"
}
