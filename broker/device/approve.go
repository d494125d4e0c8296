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
	// retryAfter, when set, is sent as Retry-After.
	retryAfter time.Duration
}

// storeRetryAfter is the Retry-After of a page that could not reach the
// store.
const storeRetryAfter = 5 * time.Second

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
	c, ref := h.lookup(r, sess.SessionID, raw)
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

// lookup finds the record of an entered code, within the guess budgets
// (Limits). A malformed entry spends nothing: it cannot match a code.
// Otherwise the entry takes a unit of the session's, the replica's and the
// deployment's budget before the store is asked, and gets them back when
// the code exists; a wrong code keeps them spent, and is logged with the
// session id.
//
// Only a signed-in session gets here (page and decide send anyone else
// to /login first), and the in-memory buckets come before any store call:
// an entry over the session's or the replica's bucket costs no store call
// at all. A refused reservation writes nothing either (the counter's read
// answers). So every store write of a wrong entry is a unit of the
// deployment's budget: the writes are bounded by the limits themselves
// (with DefaultLimits 60 a minute for the whole deployment, and at most
// 10 per session per code lifetime on a replica). An entry with a real
// code costs two writes (its unit taken and given back) on top of its
// lookup; each needs a live code, and every code is a store write of its
// own at /device/code.
//
// When the store cannot count or look up, the entry is refused (fail
// closed) with 503 and Retry-After: nothing was decided, the person is not
// to blame (429 would say they guessed too often), and it is what every
// other page answers when the store is unavailable. Never a 500.
func (h *Handler) lookup(r *http.Request, sessionID, raw string) (store.DeviceCode, *refusal) {
	ctx := r.Context()
	code, ok := normaliseUserCode(raw)
	if !ok {
		return store.DeviceCode{}, &refusal{status: http.StatusBadRequest, msg: "That is not a code: a code is 8 letters, like BCDF-GHJK."}
	}
	if ok, wait, mine := h.guesses.take(sessionID); !ok {
		return store.DeviceCode{}, tooMany(wait, mine)
	}
	sl, ok, wait, err := h.budget.reserve(ctx)
	switch {
	case err != nil:
		// Nothing was looked up: the session's tokens come back; the
		// store's unit, if it was taken, stays spent (fail closed).
		h.guesses.giveBack(sessionID)
		h.log.Warn("counting a device user code entry failed: refusing it", "sid", sessionID, "err", err)
		return store.DeviceCode{}, unavailable()
	case !ok:
		// The session's tokens stay spent: an entry refused here costs
		// a store read, and the session's bucket bounds how many it makes.
		h.log.Warn("the deployment's budget of wrong device user codes is spent for this window: refusing the entry", "sid", sessionID, "window", sl.id)
		return store.DeviceCode{}, tooMany(wait, false)
	}
	c, err := h.store.GetDeviceCodeByUserCode(ctx, code)
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.log.Info("wrong device user code entered", "sid", sessionID)
		return c, &refusal{status: http.StatusNotFound, msg: "No sign-in request has that code. Check the code on your device and try again."}
	case err != nil:
		h.guesses.giveBack(sessionID)
		h.log.Warn("reading a device code failed: refusing the entry", "sid", sessionID, "err", err)
		return c, unavailable()
	}
	// The code exists: the entry was no guess.
	h.guesses.giveBack(sessionID)
	if err := h.budget.release(ctx, sl); err != nil {
		h.log.Warn("giving back a device user code entry failed; the deployment's budget stays one lower for this window", "err", err)
	}
	if ref := h.stateRefusal(c); ref != nil {
		return c, ref
	}
	return c, nil
}

// tooMany refuses an entry over a guess budget: the session's own (mine),
// or one that every session shares.
func tooMany(wait time.Duration, mine bool) *refusal {
	msg := "Too many wrong codes. Wait a few minutes, then check the code on your device and try again."
	if !mine {
		msg = "Too many wrong codes have been entered here recently, by everyone together. Try again in " + pageDuration(wait) + "."
	}
	return &refusal{status: http.StatusTooManyRequests, msg: msg, retryAfter: max(wait, time.Second)}
}

// unavailable refuses an entry the store could not count or look up.
func unavailable() *refusal {
	return &refusal{status: http.StatusServiceUnavailable, msg: "ghbroker cannot check codes right now. Nothing was approved; please try again in a few seconds.", retryAfter: storeRetryAfter}
}

// stateRefusal says why a found code can no longer be approved.
func (h *Handler) stateRefusal(c store.DeviceCode) *refusal {
	switch {
	case !h.now().Before(c.Deadline):
		return &refusal{status: http.StatusGone, msg: "This code has expired. Start the sign-in on your device again to get a new one."}
	case c.Status == store.DeviceApproved || c.Status == store.DeviceRedeemed:
		return &refusal{status: http.StatusGone, msg: "This code was already used. Start the sign-in on your device again if you need to."}
	case c.Status == store.DeviceDenied:
		return &refusal{status: http.StatusGone, msg: "This request was denied. Start the sign-in on your device again if that was a mistake."}
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
	c, ref := h.lookup(r, sess.SessionID, raw)
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
	if ref.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((ref.retryAfter+time.Second-1)/time.Second)))
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
