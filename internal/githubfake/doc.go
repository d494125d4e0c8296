// Package githubfake is a test double that emulates the parts of github.com
// and GitHub Enterprise Server that ghbroker talks to: the OAuth App web flow
// (/login/oauth/authorize, /login/oauth/access_token) and a handful of REST
// endpoints (/user, /user/emails, /user/orgs, /user/teams,
// /user/memberships/orgs, org and team membership checks).
//
// One [Server] is an [net/http.Handler]; put it behind
// [net/http/httptest.NewServer] in tests or behind a listener in
// `ghbroker dev`. It serves the REST API both at the root (api.github.com
// style, when the client is pointed at the same host) and under /api/v3
// (GHES style); Link headers and resource URLs keep the scheme, host and
// base the request used. Its users, organizations and teams come from a
// [Fixture] (YAML, see [LoadFixture] and [DefaultFixture]).
//
// It reproduces GitHub's wire quirks on purpose: token errors with HTTP 200,
// comma-separated scopes in token responses, a form-encoded token response
// unless the client asks for JSON, 404 instead of 403 for a missing
// user:email scope, the 302 hop from /orgs/{org}/members/{u} to
// /public_members/{u} for non-members, the OAuth App access restriction 403
// and the silent omission of restricted organizations from team lists, the
// SAML SSO 403 with "X-GitHub-SSO: required; url=…" and the
// "partial-results" lists of SSO-enforced organizations, Link
// pagination, rate-limit headers, ETag/If-None-Match. Faults (latency,
// outages, rate limiting, broken or huge bodies) can be switched on at run
// time with [Server.SetFaults].
//
// Where GitHub's behaviour is undocumented the emulator picks one and says
// so on the method or in the README-style notes below:
//
//   - PKCE: only code_challenge_method=S256 is accepted; any other method,
//     an absent method with a challenge (RFC 7636 §4.3 would mean "plain") or
//     a malformed challenge redirects with error=invalid_request. A missing
//     or wrong code_verifier at the token endpoint answers
//     bad_verification_code. A verifier sent for a code issued without a
//     challenge is ignored.
//   - A code is consumed by every exchange attempt that authenticates the
//     client, successful or not (so a PKCE or redirect_uri failure burns the
//     code). Reusing a code does not revoke tokens issued from it.
//   - Errors after a valid redirect_uri (access_denied, invalid_request) go
//     to that redirect_uri; redirect_uri_mismatch goes to the registered
//     callback, as GitHub documents.
//   - allow_signup is accepted and ignored; prompt=select_account is
//     accepted, and the account picker is shown on every authorization
//     anyway (unless [Server.SetAutoApprove] is on, which wins). An absent
//     scope parameter grants "" (no scopes), not earlier grants.
//   - Missing scope: /user/orgs, /user/teams and /user/memberships/orgs
//     answer 403 with a "You need at least read:org scope…" message;
//     /user/memberships/orgs/{org} and team memberships answer 404;
//     /orgs/{org}/members/{u} treats the requester as a non-member (302).
//   - /user/teams lists direct team memberships only, not ancestor teams;
//     clients derive ancestry from "parent".
//   - Every organization member is treated as a public member.
//   - Every REST endpoint requires a token (GitHub would serve public
//     members anonymously). A missing Authorization header answers
//     401 "Requires authentication"; an unknown or revoked token answers
//     401 "Bad credentials".
//   - The API version check answers 400 for any version other than
//     2022-11-28 and 2026-03-10; both versions return the same bodies for
//     these endpoints (the 2026-03-10 breaking changes do not touch them).
//
// It does not emulate: GitHub Apps (ghu_ tokens, refresh tokens, installation
// tokens), the device flow, fine-grained PATs, SSO/SAML enforcement, the 10
// tokens per user/app/scope cap, token scope narrowing on re-authorization,
// GraphQL, gzip, conditional requests by date (If-Modified-Since), per-user
// (rather than per-token) rate limits, secondary rate limits other than the
// injected fault, or any endpoint not listed above (those answer 404).
// Latency faults use the real clock; code expiry and rate-limit windows use
// [Options.Now].
package githubfake
