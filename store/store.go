// Package store defines the records ghbroker persists and the small
// interfaces through which the rest of the program reads and writes them.
//
// It owns the record types and the storage contract (including the
// conformance suite in store/storetest). It does not own any engine: see
// store/bolt (the embedded default, on go.etcd.io/bbolt), store/etcd (for
// any number of replicas sharing one state) and store/memory (for unit
// tests). authz never imports this package: the hot path is
// stateless.
//
// Every read-modify-write goes through an update closure that runs inside
// one transaction: the closure receives the current record and returns the
// new one; returning an error aborts the transaction and leaves the record
// untouched. An engine that detects conflicting writers by compare-and-swap
// (etcd) runs the closure again on the record as the winner left it, so a
// closure may run more than once and must not have effects beyond the
// values it returns and variables it overwrites. Records past their Expires
// time are invisible to readers (they read as ErrNotFound) and are deleted
// by Sweep (bolt, memory) or by the engine itself (etcd leases).
package store

import (
	"context"
	"errors"
	"time"
)

// Errors every implementation returns, matched with errors.Is.
var (
	// ErrNotFound means no live record has that id.
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists means a Create found a live record with that id.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrUnavailable means the engine could not answer in time: its
	// servers are unreachable, have no quorum, or are too busy (including
	// a read-modify-write that lost to other writers more often than its
	// retry budget allows). Nothing was changed, or the change is
	// unknown; the request may be retried later. HTTP handlers answer 503
	// with Retry-After.
	ErrUnavailable = errors.New("store: unavailable")
)

// SigningKey is one signing key in the key set.
type SigningKey struct {
	// KID is the RFC 7638 thumbprint of the public key, base64url.
	KID string `json:"kid"`
	// Algorithm is the JWS algorithm: RS256, ES256 or EdDSA.
	Algorithm string `json:"alg"`
	// PrivateJWK is the private key as a JSON Web Key.
	PrivateJWK []byte `json:"private_jwk"`
	// Created is when the key was generated.
	Created time.Time `json:"created"`
	// Expires is set on previous keys only: after it no token the key
	// signed can still be valid, and the key leaves the published set.
	Expires time.Time `json:"expires,omitzero"`
}

// Keys is the signing key set: Current signs, Next is published before it
// signs, Previous verify only until they expire.
type Keys struct {
	// Current signs every new token. Nil only before the first rotation.
	Current *SigningKey `json:"current,omitempty"`
	// Next is published in the JWKS and becomes Current at NextRotation.
	Next *SigningKey `json:"next,omitempty"`
	// Previous are retired keys still needed to verify live tokens.
	Previous []SigningKey `json:"previous,omitempty"`
	// NextRotation is when Next becomes Current.
	NextRotation time.Time `json:"next_rotation"`
}

// Session is the broker-side sign-in session: what silent renewal, the
// OIDC authorize endpoint and refresh read back.
type Session struct {
	// ID is random and also the "sid" claim.
	ID string `json:"id"`
	// SecretHash is the SHA-256 of the renewal secret kept in the browser's
	// session-id cookie; the id alone does not renew a session.
	SecretHash string `json:"secret_hash,omitempty"`
	// Subject is the GitHub numeric user id, as a decimal string.
	Subject string `json:"sub"`
	// Login is the GitHub login at the last sign-in or renewal.
	Login string `json:"login"`
	// Name is the GitHub display name.
	Name string `json:"name,omitempty"`
	// Email is the primary verified email.
	Email string `json:"email,omitempty"`
	// EmailVerified reports whether Email is verified.
	EmailVerified bool `json:"email_verified,omitempty"`
	// Picture is the avatar URL.
	Picture string `json:"picture,omitempty"`
	// Groups is the groups claim at the last sign-in or renewal.
	Groups []string `json:"groups,omitempty"`
	// GitHubToken is the user's GitHub token, sealed with AES-GCM by the
	// broker; the store never sees it in the clear.
	GitHubToken []byte `json:"github_token,omitempty"`
	// AuthTime is when the user last signed in at GitHub.
	AuthTime time.Time `json:"auth_time"`
	// Renewed is when memberships were last read from GitHub.
	Renewed time.Time `json:"renewed"`
	// Expires ends the silent-renewal window (session.max_age).
	Expires time.Time `json:"expires"`
	// RelyingParties are the OIDC clients that received tokens of this
	// session: the ones told by back-channel logout when it ends.
	RelyingParties []string `json:"rps,omitempty"`
	// SignedOut, when set, is when the person signed out: the browser's
	// session is over, and the record stays only for the refresh tokens
	// granted with offline_access (OpenID Back-Channel Logout §2.7).
	SignedOut time.Time `json:"signed_out,omitzero"`
}

// AuthRequest is a validated OIDC authorization request (OIDC Core
// §3.1.2.1) waiting for the user to sign in.
type AuthRequest struct {
	ClientID            string   `json:"client_id"`
	RedirectURI         string   `json:"redirect_uri"`
	Scopes              []string `json:"scopes,omitempty"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
}

// AuthCode is an issued authorization code, keyed by the hash of the code.
// A code is used once: the first exchange marks it Used and records the
// refresh family it created, so that a second use can revoke that family.
type AuthCode struct {
	// ID is the hash of the code.
	ID string `json:"id"`
	// Request is the authorization request the code answers.
	Request AuthRequest `json:"request"`
	// SessionID is the broker session the user was signed in with.
	SessionID string `json:"session_id"`
	// Used is set by the first exchange.
	Used bool `json:"used,omitempty"`
	// FamilyID is the refresh family the first exchange created, if any.
	FamilyID string `json:"family_id,omitempty"`
	// AccessTokenIDs are the "jti" of access tokens the first exchange
	// issued, so that a replay can revoke them.
	AccessTokenIDs []string `json:"access_token_ids,omitempty"`
	// Replayed is set by every use after the first, so that a first use
	// still issuing its tokens when a second one arrives (on another
	// replica, at the same instant) learns of it and gives them up.
	Replayed bool `json:"replayed,omitempty"`
	// Expires is 60 seconds after issue (kept longer once Used, to detect
	// replays).
	Expires time.Time `json:"expires"`
}

// RefreshFamily is one chain of rotated refresh tokens. Only the hash of
// the newest token is kept; presenting any other token of the family is a
// replay and revokes it.
type RefreshFamily struct {
	// ID is random and is the public half of every token in the family.
	ID string `json:"id"`
	// ClientID is the client the family was issued to.
	ClientID string `json:"client_id"`
	// SessionID is the broker session the family was created from.
	SessionID string `json:"session_id"`
	// Subject is the GitHub numeric user id.
	Subject string `json:"sub"`
	// Scopes are the scopes originally granted.
	Scopes []string `json:"scopes,omitempty"`
	// AuthTime is carried into refreshed ID tokens.
	AuthTime time.Time `json:"auth_time"`
	// CurrentHash is the hash of the only token that may be used next.
	CurrentHash string `json:"current_hash"`
	// Revoked marks a family ended by reuse or revocation.
	Revoked bool `json:"revoked,omitempty"`
	// Expires ends the family (session.max_age from its creation).
	Expires time.Time `json:"expires"`
}

// DeviceStatus is where a device authorization stands (RFC 8628 §3.4).
type DeviceStatus string

// The states of a device authorization. Pending → Approved or Denied by
// the person; Approved → Redeemed by the first successful poll.
const (
	DevicePending  DeviceStatus = "pending"
	DeviceApproved DeviceStatus = "approved"
	DeviceDenied   DeviceStatus = "denied"
	DeviceRedeemed DeviceStatus = "redeemed"
)

// DeviceCode is a device authorization request (RFC 8628 §3.2), keyed by
// the hash of the device code and findable by its user code. The record
// stays until it expires, so that a redeemed or denied code keeps answering
// what happened to it.
type DeviceCode struct {
	// ID is the hash of the device code.
	ID string `json:"id"`
	// UserCode is the normalised user code: 8 capital letters, no hyphen.
	// No two live records share one.
	UserCode string `json:"user_code"`
	// ClientID is the client that asked.
	ClientID string `json:"client_id"`
	// Scopes are the scopes granted on approval.
	Scopes []string `json:"scopes,omitempty"`
	// Status is where the authorization stands.
	Status DeviceStatus `json:"status"`
	// SessionID is the broker session of the person who approved.
	SessionID string `json:"session_id,omitempty"`
	// Interval is the polling interval the client must keep, in seconds;
	// it grows by 5 on every slow_down.
	Interval int `json:"interval"`
	// LastPoll is when the client last polled.
	LastPoll time.Time `json:"last_poll,omitzero"`
	// Deadline is when the code stops being usable (ten minutes after
	// issue).
	Deadline time.Time `json:"deadline"`
	// Expires is when the record goes, some time after Deadline, so that
	// the approval page and polls can still say "expired" in between.
	Expires time.Time `json:"expires"`
}

// DeviceCodeStore persists device authorizations.
type DeviceCodeStore interface {
	// CreateDeviceCode stores a new code; ErrAlreadyExists when a live
	// record has its id or its user code.
	CreateDeviceCode(ctx context.Context, c DeviceCode) error
	// GetDeviceCodeByUserCode returns the live record with that user code.
	GetDeviceCodeByUserCode(ctx context.Context, userCode string) (DeviceCode, error)
	// UpdateDeviceCode runs fn on the live record and stores the result in
	// one transaction; fn must not change the id, the user code or the
	// expiry (the update fails if it does).
	UpdateDeviceCode(ctx context.Context, id string, fn func(DeviceCode) (DeviceCode, error)) error
}

// KeyStore persists the signing key set.
type KeyStore interface {
	// GetKeys returns the key set, or ErrNotFound before the first update.
	GetKeys(ctx context.Context) (Keys, error)
	// UpdateKeys runs fn on the current key set (the zero Keys when none
	// exists) and stores its result, all in one transaction.
	UpdateKeys(ctx context.Context, fn func(old Keys) (Keys, error)) error
}

// SecretStore keeps named random secrets (cookie and token-sealing keys).
type SecretStore interface {
	// GetOrCreateSecret returns the secret named name, creating it with
	// gen in the same transaction when it does not exist.
	GetOrCreateSecret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error)
}

// SessionStore persists broker-side sessions.
type SessionStore interface {
	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	UpdateSession(ctx context.Context, id string, fn func(Session) (Session, error)) error
	DeleteSession(ctx context.Context, id string) error
}

// AuthCodeStore persists authorization codes.
type AuthCodeStore interface {
	CreateAuthCode(ctx context.Context, c AuthCode) error
	// UpdateAuthCode runs fn on the live code and stores the result in one
	// transaction; ErrNotFound when the code is unknown or expired.
	UpdateAuthCode(ctx context.Context, id string, fn func(AuthCode) (AuthCode, error)) error
}

// RefreshStore persists refresh-token families.
type RefreshStore interface {
	CreateRefreshFamily(ctx context.Context, f RefreshFamily) error
	GetRefreshFamily(ctx context.Context, id string) (RefreshFamily, error)
	UpdateRefreshFamily(ctx context.Context, id string, fn func(RefreshFamily) (RefreshFamily, error)) error
	DeleteRefreshFamily(ctx context.Context, id string) error
}

// SessionLister lists live sessions (operators' `sessions list`, webhook
// events about teams).
type SessionLister interface {
	ListSessions(ctx context.Context) ([]Session, error)
}

// DeliveryStore remembers GitHub webhook delivery ids.
type DeliveryStore interface {
	// FirstDelivery records id until expires and reports whether it was
	// new, in one transaction: of concurrent callers with one id, exactly
	// one is told true.
	FirstDelivery(ctx context.Context, id string, expires time.Time) (bool, error)
}

// Delivery is a remembered webhook delivery.
type Delivery struct {
	// ID is GitHub's X-GitHub-Delivery.
	ID string `json:"id"`
	// Expires is when the id may be forgotten.
	Expires time.Time `json:"expires"`
}

// Revocation is an entry of the revocation set, kept in the store so that
// it survives a restart and reaches every broker replica.
type Revocation struct {
	// ID is random, unique per entry.
	ID string `json:"id"`
	// Subject, Session and All say what is revoked (see package
	// revocation); Before is the instant in Unix milliseconds.
	Subject string `json:"sub,omitempty"`
	Session string `json:"sid,omitempty"`
	All     bool   `json:"all,omitempty"`
	Before  int64  `json:"before,omitempty"`
	// Source says why.
	Source string `json:"src,omitempty"`
	// Expires is when no token it could match is still valid.
	Expires time.Time `json:"expires"`
}

// RevocationStore keeps the revocation set.
type RevocationStore interface {
	AddRevocation(ctx context.Context, r Revocation) error
	// Revocations returns every live entry.
	Revocations(ctx context.Context) ([]Revocation, error)
}

// RevocationWatcher is a RevocationStore that other processes share
// (etcd): it reports entries added anywhere, as they are added.
type RevocationWatcher interface {
	// WatchRevocations sends every entry added until ctx ends; the
	// channel closes then. A zero Revocation says the watch is established
	// (first, or again after a gap): the caller then re-reads them all.
	WatchRevocations(ctx context.Context) <-chan Revocation
}

// Counter is a count kept in the store for a while: the deployment-wide
// budget of wrong device user codes is one counter per window of time.
type Counter struct {
	// ID names the counter.
	ID string `json:"id"`
	// N is the count, never below 0.
	N int `json:"n"`
	// Expires is when the counter goes (and a later add starts from 0).
	Expires time.Time `json:"expires"`
}

// CounterStore keeps counters that every process sharing the store adds
// to, so that a budget holds for the whole deployment rather than per
// replica.
type CounterStore interface {
	// AddToCounter adds delta to the live counter id, provided the result
	// stays within 0 and limit, and returns the new value with added true;
	// otherwise it changes nothing and returns the current value with added
	// false. A missing or expired counter counts 0; one created here
	// expires at expires (which must be after now), a live one keeps the
	// expiry it was created with. It is one read-modify-write: of
	// concurrent callers no addition is lost, and exactly as many add as
	// the limit leaves room for. A call that adds nothing writes nothing.
	AddToCounter(ctx context.Context, id string, delta, limit int, expires time.Time) (n int, added bool, err error)
}

// Store is everything one storage engine provides. Consumers should ask for
// the narrow interface they use, not for Store.
type Store interface {
	KeyStore
	SecretStore
	SessionStore
	AuthCodeStore
	RefreshStore
	DeviceCodeStore
	SessionLister
	DeliveryStore
	RevocationStore
	CounterStore
	// Sweep deletes every record that expired before now and reports how
	// many it deleted. An engine whose records expire by themselves (etcd
	// leases) has nothing to sweep and returns 0.
	Sweep(ctx context.Context, now time.Time) (int, error)
	// Close releases the engine. Calls after Close fail.
	Close() error
}
