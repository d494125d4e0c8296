// A relying party built on openid-client (an OpenID-certified RP library)
// that runs the whole OIDC life cycle against a running `ghbroker dev`:
// discovery, authorization code + PKCE + nonce, ID-token validation by the
// library, userinfo, refresh, revocation, RP-initiated logout.
//
// Usage: node rp.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI POST_LOGOUT_URI
// Prints one JSON line of results; exits non-zero on the first failure.
import * as client from 'openid-client'
import http from 'node:http'
import dns from 'node:dns'

const [issuer, clientId, clientSecret, redirectUri, postLogoutUri] = process.argv.slice(2)

function check(cond, what) {
  if (!cond) {
    throw new Error('check failed: ' + what)
  }
}

// A minimal browser: follows redirects by hand and keeps cookies per host,
// so that the broker's browser-bound sign-in state works.
const jar = new Map()
function cookieHeader(url) {
  const c = jar.get(url.host)
  return c ? [...c.entries()].map(([k, v]) => `${k}=${v}`).join('; ') : ''
}
function storeCookies(url, res) {
  for (const line of res.headers['set-cookie'] ?? []) {
    const [pair, ...attrs] = line.split(';')
    const i = pair.indexOf('=')
    const name = pair.slice(0, i).trim()
    const value = pair.slice(i + 1).trim()
    const expired = attrs.some((a) => /^\s*max-age=(0|-)/i.test(a))
    const m = jar.get(url.host) ?? new Map()
    if (expired || value === '') m.delete(name)
    else m.set(name, value)
    jar.set(url.host, m)
  }
}
// Like browsers, resolve every *.localhost name to loopback (the GitHub
// emulator of `ghbroker dev` lives at github.localhost).
function lookup(hostname, options, cb) {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    return options.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)
  }
  return dns.lookup(hostname, options, cb)
}
function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { lookup, headers: { cookie: cookieHeader(url), accept: 'text/html' } }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }))
    })
    req.on('error', reject)
  })
}
// browse follows redirects until one leaves for a URL starting with stopAt.
async function browse(start, stopAt) {
  let url = new URL(start)
  for (let i = 0; i < 15; i++) {
    if (url.href.startsWith(stopAt)) return url
    const res = await get(url)
    storeCookies(url, res)
    const loc = res.headers.location
    if (res.status < 300 || res.status > 399 || !loc) {
      throw new Error(`browsing stopped at ${url} with ${res.status}: ${res.body.slice(0, 300)}`)
    }
    url = new URL(loc, url)
  }
  throw new Error('too many redirects')
}

// openid-client's own requests go through fetch, which does not resolve
// *.localhost: give it a fetch on node:http with the same resolver.
function localFetch(url, options) {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    const headers = {}
    new Headers(options.headers).forEach((v, k) => (headers[k] = v))
    const req = http.request(u, { method: options.method ?? 'GET', headers, lookup }, (res) => {
      const chunks = []
      res.on('data', (d) => chunks.push(d))
      res.on('end', () => {
        const h = new Headers()
        for (const [k, v] of Object.entries(res.headers)) {
          for (const one of [].concat(v)) h.append(k, one)
        }
        const body = [204, 304].includes(res.statusCode) ? null : Buffer.concat(chunks)
        resolve(new Response(body, { status: res.statusCode, headers: h }))
      })
    })
    req.on('error', reject)
    if (options.body) req.write(typeof options.body === 'string' ? options.body : options.body.toString())
    req.end()
  })
}

const results = {}
const config = await client.discovery(new URL(issuer), clientId, clientSecret, client.ClientSecretBasic(clientSecret), {
  execute: [client.allowInsecureRequests], // the dev issuer is plain http on localhost
  [client.customFetch]: localFetch,
})
results.issuer = config.serverMetadata().issuer
check(results.issuer === issuer, 'discovery issuer')

const verifier = client.randomPKCECodeVerifier()
const nonce = client.randomNonce()
const state = client.randomState()
const authURL = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid profile email groups offline_access',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  nonce,
  state,
})
const callback = await browse(authURL.href, redirectUri)
const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: verifier,
  expectedNonce: nonce,
  expectedState: state,
  idTokenExpected: true,
})
const claims = tokens.claims()
results.sub = claims.sub
results.login = claims.preferred_username
results.groups = claims.groups
check(claims.nonce === nonce, 'nonce')
check(Array.isArray(claims.groups) && claims.groups.includes('acme/sre'), 'groups claim')
check(tokens.refresh_token, 'refresh token with offline_access')

const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
results.userinfo_login = info.login
check(info.sub === claims.sub && info.login === 'alice', 'userinfo')

const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
check(refreshed.access_token && refreshed.access_token !== tokens.access_token, 'refreshed access token')
check(refreshed.claims().sub === claims.sub, 'refreshed ID token subject')
results.refreshed = true

// The first refresh token was rotated away: using it again is refused and
// revokes the family.
let reuse = 'accepted'
try {
  await client.refreshTokenGrant(config, tokens.refresh_token)
} catch (e) {
  reuse = e.error ?? e.code ?? String(e)
}
results.reuse = reuse
check(reuse === 'invalid_grant', 'reused refresh token must be invalid_grant, got ' + reuse)

// Revocation of a fresh family's token, then refresh fails.
const second = await client.authorizationCodeGrant(
  config,
  await browse(
    client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    }).href,
    redirectUri,
  ),
  { pkceCodeVerifier: verifier, expectedState: state },
)
await client.tokenRevocation(config, second.refresh_token, { token_type_hint: 'refresh_token' })
let afterRevoke = 'accepted'
try {
  await client.refreshTokenGrant(config, second.refresh_token)
} catch (e) {
  afterRevoke = e.error ?? String(e)
}
results.after_revoke = afterRevoke
check(afterRevoke === 'invalid_grant', 'refresh after revocation')

// RP-initiated logout: back to the registered URI with our state.
const logoutState = client.randomState()
const endSession = client.buildEndSessionUrl(config, {
  id_token_hint: tokens.id_token,
  post_logout_redirect_uri: postLogoutUri,
  state: logoutState,
})
const back = await browse(endSession.href, postLogoutUri)
check(back.searchParams.get('state') === logoutState, 'logout state echoed')
results.logout = true

// prompt=none after logout: login_required.
const silent = await browse(
  client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid',
    prompt: 'none',
    state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  }).href,
  redirectUri,
)
results.prompt_none_after_logout = silent.searchParams.get('error')
check(results.prompt_none_after_logout === 'login_required', 'prompt=none after logout')

console.log(JSON.stringify(results))
