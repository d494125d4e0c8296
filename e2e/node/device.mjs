// A device-flow client built on openid-client v6 (RFC 8628): discovery,
// initiateDeviceAuthorization, then pollDeviceAuthorizationGrant while a
// person approves the code elsewhere; the library validates the ID token.
//
// Usage: node device.mjs ISSUER CLIENT_ID
// Prints two JSON lines: the authorization (user code, URLs), then the
// results once tokens arrive; exits non-zero on the first failure.
import * as client from 'openid-client'
import http from 'node:http'
import dns from 'node:dns'

const [issuer, clientId] = process.argv.slice(2)

// Resolve every *.localhost name to loopback, as browsers do.
function lookup(hostname, options, cb) {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    return options.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)
  }
  return dns.lookup(hostname, options, cb)
}

// fetch does not resolve *.localhost: a fetch on node:http with lookup.
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

const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), {
  execute: [client.allowInsecureRequests], // the dev issuer is plain http on localhost
  [client.customFetch]: localFetch,
})
const da = await client.initiateDeviceAuthorization(config, { scope: 'openid profile groups offline_access' })
console.log(JSON.stringify({ user_code: da.user_code, verification_uri: da.verification_uri,
  verification_uri_complete: da.verification_uri_complete, interval: da.interval, expires_in: da.expires_in }))

const tokens = await client.pollDeviceAuthorizationGrant(config, da)
const claims = tokens.claims()
if (!claims || !tokens.access_token || !tokens.refresh_token) {
  throw new Error('missing tokens: ' + JSON.stringify(Object.keys(tokens)))
}
console.log(JSON.stringify({ sub: claims.sub, aud: claims.aud, groups: claims.groups ?? [],
  login: claims.preferred_username, access_token: tokens.access_token }))
