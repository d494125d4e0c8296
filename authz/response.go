package authz

import (
	"net/http"
)

// response is the answer to one check before it meets a wire. respond
// builds it from the verdict, once, for every door; ServeHTTP writes it as
// the check's own HTTP response (httpHandler.write) and the gRPC Check as an
// OkHttpResponse or a DeniedHttpResponse (grpcAuthz.write). Its slices are
// shared between responses: read them, never change them.
type response struct {
	// status is 200, 302, 401 or 403.
	status int
	// identity, on a 200 with a credential, are the identity headers and
	// Authorization for the upstream; nil on a public allow without one,
	// when every identity header is removed instead.
	identity *allowHeaders
	// location is the login URL of a 302.
	location string
	// wwwAuthenticate is the challenge of a 401.
	wwwAuthenticate string
	// headers are the denial's other headers (Content-Type and the page's
	// security headers), canonical keys.
	headers []headerField
	// body is the denial's body.
	body []byte
}

// headerField is one response header.
type headerField struct{ key, value string }

// Denial bodies and headers, shared by every response.
var (
	bodyUnauthenticated = []byte("unauthenticated\n")
	headersText         = []headerField{{"Content-Type", "text/plain; charset=utf-8"}}
	headersPage         = []headerField{
		{"Content-Type", "text/html; charset=utf-8"},
		{"Content-Security-Policy", forbiddenCSP},
		{"X-Content-Type-Options", "nosniff"},
	}
)

// respond turns a verdict into the response every door sends. memo builds
// the identity headers once per verified token; own is the request's
// Authorization header when the token came from it (reused as is), else
// nil.
func (c *checker) respond(req *Request, v verdict, memo *headerMemo, own []string) response {
	switch v.result {
	case resultAllow, resultPublic:
		r := response{status: http.StatusOK}
		if v.claims != nil {
			if !v.bearer {
				own = nil
			}
			r.identity = memo.get(v.claims, v.token, own)
		}
		return r
	case resultRedirect:
		return response{status: http.StatusFound, location: LoginRedirect(c.issuer, *req, c.policy)}
	case resultForbidden:
		user := ""
		if v.claims != nil {
			user = displayName(v.claims)
		}
		if req.Browser {
			return response{status: http.StatusForbidden, headers: headersPage, body: c.pages.forbiddenPage(user, req.Host, v.dec.Rule)}
		}
		return response{status: http.StatusForbidden, headers: headersText, body: []byte(forbiddenText(user, req.Host, v.dec.Rule))}
	}
	return response{status: http.StatusUnauthorized, wwwAuthenticate: c.wwwAuthenticate(v), headers: headersText, body: bodyUnauthenticated}
}
