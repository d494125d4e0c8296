package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/broker/internal/oauth"
	"github.com/ghbroker/ghbroker/broker/internal/secret"
	"github.com/ghbroker/ghbroker/broker/session"
	"github.com/ghbroker/ghbroker/store"
)

// maxFormBytes bounds the body of every OAuth POST endpoint.
const maxFormBytes = oauth.MaxFormBytes

// clientRequest reads the bounded form of a client-authenticated endpoint
// and authenticates the client; on failure it has answered the request.
func (p *Provider) clientRequest(w http.ResponseWriter, r *http.Request) (url.Values, *Client, bool) {
	form, err := oauth.ReadForm(w, r)
	if err == nil {
		var c *Client
		if c, err = p.clients.Authenticate(r, form); err == nil {
			return form, c, true
		}
	}
	p.writeOAuthError(w, r, err)
	return nil, nil, false
}

// token is the token endpoint (RFC 6749 §3.2): authorization_code,
// refresh_token and device_code grants, each only for a client that lists it.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	form, c, ok := p.clientRequest(w, r)
	if !ok {
		return
	}
	var (
		out issued
		err error
	)
	switch gt := form.Get("grant_type"); {
	case gt == "":
		err = errInvalidRequest("grant_type is required")
	case gt == oauth.DeviceCodeGrantType && p.device != nil:
		if !c.AllowsGrant(oauth.GrantDeviceCode) {
			err = oauth.UnauthorizedClient("this client may not use the device_code grant")
			break
		}
		out, err = p.redeemDeviceCode(r.Context(), c, form)
	case gt != oauth.GrantAuthorizationCode && gt != oauth.GrantRefreshToken:
		err = errUnsupportedGrant("grant_type must be authorization_code, refresh_token or " + oauth.DeviceCodeGrantType)
	case !c.AllowsGrant(gt):
		err = oauth.UnauthorizedClient("this client may not use the " + gt + " grant")
	case gt == oauth.GrantAuthorizationCode:
		out, err = p.exchangeCode(r.Context(), c, form)
	default:
		out, err = p.refresh(r.Context(), c, form)
	}
	if err != nil {
		p.writeOAuthError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// errCodeChecked aborts the read-only transaction of codeReplayed.
var errCodeChecked = errors.New("code checked")

// exchangeCode redeems an authorization code (RFC 6749 §4.1.3). A code is
// good once, cluster-wide: of concurrent exchanges exactly one finds it
// unused (the store's update is a compare-and-swap), and every other use is
// a replay that revokes what the first issued (RFC 6749 §4.1.2).
//
// A replay can arrive while the first use is still issuing, before its
// refresh family exists, so revoking the family alone would miss it. The
// replay therefore also marks the code Replayed, and the first use reads
// the code again after it created its family: a replay marked before that
// read is seen there (the tokens are given up); one marked after it comes
// after the family's creation, so the replay's revocation finds the family.
func (p *Provider) exchangeCode(ctx context.Context, c *Client, form url.Values) (issued, error) {
	code, redirectURI, verifier := form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier")
	if code == "" {
		return issued{}, errInvalidRequest("code is required")
	}
	now := p.now()
	id := secret.Hash(code)
	familyID := secret.Random(16)
	var ac store.AuthCode
	err := p.store.UpdateAuthCode(ctx, id, func(old store.AuthCode) (store.AuthCode, error) {
		ac = old
		if old.Used {
			old.Replayed = true
			return old, nil
		}
		if old.Request.ClientID != c.ID {
			return old, errInvalidGrant("the code was issued to another client")
		}
		if old.Request.RedirectURI != redirectURI && (redirectURI != "" || !p.onlyRedirect(c, old.Request.RedirectURI)) {
			return old, errInvalidGrant("redirect_uri does not match the authorization request")
		}
		if err := checkPKCE(old.Request, verifier); err != nil {
			return old, err
		}
		old.Used, old.FamilyID, old.Expires = true, familyID, now.Add(usedCodeTTL)
		return old, nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return issued{}, errInvalidGrant("the code is invalid, expired or already used")
	case err != nil:
		return issued{}, err
	case ac.Used:
		p.log.Warn("authorization code used twice: revoking what the first use issued", "client", c.ID)
		p.revokeFamily(ctx, ac.FamilyID)
		return issued{}, errInvalidGrant("the code is invalid, expired or already used")
	}
	sess, err := p.sessions.Get(ctx, ac.SessionID)
	if errors.Is(err, store.ErrUnavailable) {
		return issued{}, err
	}
	if err != nil {
		return issued{}, errInvalidGrant("the sign-in session has ended")
	}
	out, err := p.grant(ctx, c, sess, ac.Request.Scopes, ac.Request.Nonce, familyID, now)
	if err != nil {
		return issued{}, err
	}
	switch replayed, err := p.codeReplayed(ctx, id); {
	case err != nil:
		p.revokeFamily(ctx, familyID)
		return issued{}, err
	case replayed:
		p.log.Warn("authorization code used again while its first use was issuing: giving the tokens up", "client", c.ID)
		p.revokeFamily(ctx, familyID)
		return issued{}, errInvalidGrant("the code is invalid, expired or already used")
	}
	return out, nil
}

// codeReplayed reads the used code id back and reports whether a later use
// marked it. A code that vanished counts as replayed: nothing vouches for
// the tokens any more.
func (p *Provider) codeReplayed(ctx context.Context, id string) (bool, error) {
	var replayed bool
	err := p.store.UpdateAuthCode(ctx, id, func(c store.AuthCode) (store.AuthCode, error) {
		replayed = c.Replayed
		return c, errCodeChecked
	})
	switch {
	case errors.Is(err, errCodeChecked):
		return replayed, nil
	case errors.Is(err, store.ErrNotFound):
		return true, nil
	}
	return false, err
}

// grant mints the tokens of a first grant (a code or a device code) and,
// when offline_access was asked or the client always gets one, starts a
// refresh family with id familyID.
func (p *Provider) grant(ctx context.Context, c *Client, sess store.Session, scopes []string, nonce, familyID string, now time.Time) (issued, error) {
	out, err := p.mintTokens(c, sess, scopes, nonce, now)
	if err != nil {
		return issued{}, err
	}
	if c.BackchannelLogoutURI != "" {
		// Remembered before the tokens leave, so that the client is told
		// however soon the session ends.
		if err := p.sessions.AddRelyingParty(ctx, sess.ID, c.ID); err != nil {
			return issued{}, err
		}
	}
	if slices.Contains(scopes, "offline_access") || c.AlwaysIssueRefreshToken {
		sec := secret.Random(32)
		err := p.store.CreateRefreshFamily(ctx, store.RefreshFamily{
			ID: familyID, ClientID: c.ID, SessionID: sess.ID, Subject: sess.Subject, Scopes: scopes,
			AuthTime: sess.AuthTime, CurrentHash: secret.Hash(sec), Expires: now.Add(p.sessions.MaxAge()),
		})
		if err != nil {
			return issued{}, err
		}
		out.RefreshToken = familyID + "." + sec
	}
	return out, nil
}

// redeemDeviceCode answers a device-flow poll (RFC 8628 §3.4, §3.5): the
// device package decides pending, slow_down, denied, expired and single
// use; an approved code becomes the same tokens as a code exchange.
func (p *Provider) redeemDeviceCode(ctx context.Context, c *Client, form url.Values) (issued, error) {
	dc := form.Get("device_code")
	if dc == "" {
		return issued{}, errInvalidRequest("device_code is required")
	}
	auth, err := p.device.Redeem(ctx, c.ID, dc)
	if err != nil {
		return issued{}, err
	}
	sess, err := p.sessions.Get(ctx, auth.SessionID)
	if err != nil {
		return issued{}, errInvalidGrant("the sign-in session that approved this device has ended")
	}
	return p.grant(ctx, c, sess, auth.Scopes, "", secret.Random(16), p.now())
}

// onlyRedirect reports whether uri is the client's only redirect URI, the
// case where RFC 6749 §4.1.3 lets the token request omit redirect_uri.
func (p *Provider) onlyRedirect(c *Client, uri string) bool {
	return len(c.RedirectURIs) == 1 && c.RedirectURIs[0] == uri
}

// checkPKCE verifies code_verifier against the stored S256 challenge
// (RFC 7636 §4.6), and refuses a verifier for a code that had no challenge
// (a PKCE downgrade, RFC 9700 §2.1.1).
func checkPKCE(req store.AuthRequest, verifier string) error {
	if req.CodeChallenge == "" {
		if verifier != "" {
			return errInvalidGrant("code_verifier sent but the authorization request had no code_challenge")
		}
		return nil
	}
	if verifier == "" {
		return errInvalidGrant("code_verifier is required")
	}
	if len(verifier) < 43 || len(verifier) > 128 {
		return errInvalidGrant("code_verifier must be 43 to 128 characters")
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(req.CodeChallenge)) != 1 {
		return errInvalidGrant("code_verifier does not match the code_challenge")
	}
	return nil
}

// errRefreshReplay aborts the rotation of a token that is not current.
var errRefreshReplay = errors.New("refresh token replay")

// refresh redeems a refresh token (RFC 6749 §6): it re-reads the user's
// GitHub memberships with the stored GitHub token, then rotates the token.
// Presenting a token that is not the family's newest revokes the family.
func (p *Provider) refresh(ctx context.Context, c *Client, form url.Values) (issued, error) {
	fid, sec, ok := strings.Cut(form.Get("refresh_token"), ".")
	if !ok || fid == "" || sec == "" {
		return issued{}, errInvalidGrant("the refresh token is invalid")
	}
	fam, err := p.store.GetRefreshFamily(ctx, fid)
	if errors.Is(err, store.ErrUnavailable) {
		return issued{}, err
	}
	if err != nil || fam.Revoked {
		return issued{}, errInvalidGrant("the refresh token is invalid, expired or revoked")
	}
	if fam.ClientID != c.ID {
		return issued{}, errInvalidGrant("the refresh token was issued to another client")
	}
	if !currentToken(fam.CurrentHash, sec) {
		p.log.Warn("refresh token reused: revoking its family", "client", c.ID, "sub", fam.Subject)
		p.revokeFamily(ctx, fid)
		return issued{}, errInvalidGrant("the refresh token was already used")
	}
	scopes := fam.Scopes
	if sc := form.Get("scope"); sc != "" {
		scopes = nil
		for _, x := range strings.Fields(sc) {
			if !slices.Contains(fam.Scopes, x) {
				return issued{}, errInvalidScope("scope " + x + " was not granted originally")
			}
			scopes = append(scopes, x)
		}
	}
	sess, err := p.refreshMemberships(ctx, fam)
	if err != nil {
		return issued{}, err
	}
	next := secret.Random(32)
	err = p.store.UpdateRefreshFamily(ctx, fid, func(f store.RefreshFamily) (store.RefreshFamily, error) {
		if f.Revoked || !currentToken(f.CurrentHash, sec) {
			return f, errRefreshReplay
		}
		f.CurrentHash = secret.Hash(next)
		return f, nil
	})
	if errors.Is(err, errRefreshReplay) {
		p.revokeFamily(ctx, fid)
		return issued{}, errInvalidGrant("the refresh token was already used")
	}
	if err != nil {
		return issued{}, err
	}
	out, err := p.mintTokens(c, sess, scopes, "", p.now())
	if err != nil {
		return issued{}, err
	}
	out.RefreshToken = fid + "." + next
	return out, nil
}

// refreshMemberships re-reads GitHub for the family's session (the same
// renewal as /login's): a user who left every allowed org, or revoked the
// app, ends the session and the family.
func (p *Provider) refreshMemberships(ctx context.Context, fam store.RefreshFamily) (store.Session, error) {
	// A sign-out ends the session's refresh tokens except those granted
	// with offline_access (OpenID Back-Channel Logout §2.7).
	sess, err := p.sessions.GetForRefresh(ctx, fam.SessionID, slices.Contains(fam.Scopes, "offline_access"))
	if errors.Is(err, store.ErrUnavailable) {
		return sess, err
	}
	if err != nil {
		p.revokeFamily(ctx, fam.ID)
		return sess, errInvalidGrant("the sign-in session has ended")
	}
	sess, err = p.sessions.Reread(ctx, sess)
	var na *session.NotAdmittedError
	switch {
	case errors.Is(err, session.ErrGitHubToken):
		p.revokeFamily(ctx, fam.ID)
		return sess, errInvalidGrant("the GitHub authorization was revoked")
	case errors.As(err, &na):
		p.revokeFamily(ctx, fam.ID)
		return sess, errInvalidGrant("the user is no longer in an allowed organization")
	case github.IsTemporary(err):
		return sess, &oauthError{Code: "temporarily_unavailable", Description: "GitHub is unavailable; retry later",
			Status: http.StatusServiceUnavailable, RetryAfter: signinRetryAfter(err)}
	}
	return sess, err
}

// signinRetryAfter is how long a client should wait after a GitHub outage.
func signinRetryAfter(err error) time.Duration {
	if d := github.RetryAfter(err); d > 0 {
		return d
	}
	return 30 * time.Second
}

// revokeFamily ends a refresh family; failures are logged.
func (p *Provider) revokeFamily(ctx context.Context, id string) {
	if id == "" {
		return
	}
	err := p.store.UpdateRefreshFamily(ctx, id, func(f store.RefreshFamily) (store.RefreshFamily, error) {
		f.Revoked = true
		return f, nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.log.Error("revoking a refresh family failed", "err", err)
	}
}
