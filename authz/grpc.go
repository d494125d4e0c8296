package authz

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ghbroker/ghbroker/claims"
)

// GRPCOptions configure the gRPC front door.
type GRPCOptions struct {
	// Issuer is the broker's public URL: the WWW-Authenticate realm and
	// the base of the login redirect. Required.
	Issuer string
	// Verifier checks tokens. Required.
	Verifier TokenVerifier
	// Policy decides. Required.
	Policy *Policy
	// CookieName is the SSO cookie. Default "_ghbroker".
	CookieName string
	// Metrics records decisions. May be nil.
	Metrics *Metrics
	// Logger receives decisions at debug level, checks refused as
	// malformed at warn level (at most one line a second per reason, with
	// a count of the lines held back) and recovered panics at error level.
	// Default discards.
	Logger *slog.Logger
	// Now is the clock of the warn-level rate limit. Default time.Now.
	Now func() time.Time
	// Revocations, when set, refuses withdrawn tokens in memory. Nil
	// enforces none.
	Revocations Revocations
	// OmitToken leaves the verified token out of the allowed request
	// (authz.forward_token: false), for upstreams that never verify it:
	// about 800 bytes less per request.
	OmitToken bool
	// SessionRefresh, when set, is asked on every request allowed by a
	// session cookie for Set-Cookie values to send to the browser
	// (OkHttpResponse.response_headers_to_add, which only the gRPC check
	// has): the hook for sliding the session when its token is close to
	// expiry. It must not block or do I/O. Nil sends none.
	SessionRefresh func(session *claims.Claims, token string) (setCookies []string)
	// ServerOptions are passed to grpc.NewServer (TLS credentials,
	// keepalive, limits).
	ServerOptions []grpc.ServerOption
}

// authzService is the Envoy Authorization service; the gRPC name its
// health status is registered under.
const authzService = "envoy.service.auth.v3.Authorization"

// NewGRPCServer returns a gRPC server with envoy.service.auth.v3.Authorization
// (Emissary AuthService proto: grpc with protocol_version: v3, Envoy
// ext_authz grpc_service) and the standard health service, SERVING both
// overall and for the Authorization service. The caller serves it on
// authz.grpc_listen and stops it.
//
// The decision and the response are the HTTP door's, returned as an
// OkHttpResponse (identity headers and Authorization, overwriting the
// client's; identity headers not set are removed) or a DeniedHttpResponse
// (302 with Location, 401 with WWW-Authenticate, 403 with a body). A Mapping's
// auth_context_extensions allow_groups and allow_users (comma-separated)
// narrow the policy for that route.
func NewGRPCServer(opts GRPCOptions) (*grpc.Server, error) {
	c, err := newChecker(opts.Issuer, opts.Verifier, opts.Policy, opts.CookieName, opts.Metrics, opts.Logger, opts.Now)
	if err != nil {
		return nil, err
	}
	c.revocations = opts.Revocations
	s := grpc.NewServer(opts.ServerOptions...)
	memo := newHeaderMemo()
	memo.noToken = opts.OmitToken
	authv3.RegisterAuthorizationServer(s, &grpcAuthz{c: c, refresh: opts.SessionRefresh, memo: memo})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(authzService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	return s, nil
}

// grpcAuthz implements authv3.AuthorizationServer.
type grpcAuthz struct {
	authv3.UnimplementedAuthorizationServer
	c       *checker
	refresh func(*claims.Claims, string) []string
	memo    *headerMemo
}

// Check answers one ext_authz request. It never returns an error: a
// failure is a denial (a recovered panic is logged and answered 401),
// because gRPC errors become the gateway's status_on_error.
func (g *grpcAuthz) Check(ctx context.Context, in *authv3.CheckRequest) (out *authv3.CheckResponse, err error) {
	start, mono := g.c.clock.now()
	res := resultUnauthenticated
	defer func() {
		if p := recover(); p != nil {
			g.c.log.ErrorContext(ctx, "authz check panicked; answering 401", slog.Any("panic", p), slog.String("door", doorGRPC.String()))
			v := verdict{result: resultUnauthenticated}
			resp := g.c.respond(&Request{}, v, g.memo, nil)
			out, err, res = g.write(&resp, v), nil, resultUnauthenticated
		}
		g.c.metrics.observe(doorGRPC, res, g.c.clock.since(mono))
	}()

	attrs := in.GetAttributes()
	hr := attrs.GetRequest().GetHttp()
	hdrs := grpcHeaders(hr)
	req, reqErr := grpcRequest(hr, hdrs)
	ext := grpcExtensions(attrs.GetContextExtensions())
	v := g.c.check(&req, reqErr, true, hdrs["authorization"], hdrs["cookie"], ext, start)
	res = v.result
	g.c.logDecision(ctx, doorGRPC, &req, v)
	resp := g.c.respond(&req, v, g.memo, nil)
	return g.write(&resp, v), nil
}

// grpcHeaders collects the request headers, lower-case, from the headers
// map or, when Envoy encodes raw headers, from header_map.
func grpcHeaders(hr *authv3.AttributeContext_HttpRequest) map[string][]string {
	out := make(map[string][]string, len(hr.GetHeaders()))
	for k, v := range hr.GetHeaders() {
		k = strings.ToLower(k)
		out[k] = append(out[k], v)
	}
	for _, h := range hr.GetHeaderMap().GetHeaders() {
		k := strings.ToLower(h.GetKey())
		v := h.GetValue()
		if v == "" && len(h.GetRawValue()) > 0 {
			v = string(h.GetRawValue())
		}
		out[k] = append(out[k], v)
	}
	return out
}

// grpcRequest reconstructs the original request from the attributes: the
// scheme from X-Forwarded-Proto (set by Envoy's connection manager, the
// client-facing scheme behind a TLS-terminating balancer), else the
// attribute; host and path from the attributes (AttributeContext.HttpRequest
// host and path), else the pseudo-headers. An attribute and its
// pseudo-header that disagree are refused. X-Forwarded-Host is ignored, as
// on the HTTP door's Envoy dialect: Envoy forwards the client's.
func grpcRequest(hr *authv3.AttributeContext_HttpRequest, hdrs map[string][]string) (Request, error) {
	first := func(k string) string {
		if v := hdrs[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	or := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	method := or(hr.GetMethod(), first(":method"))
	host := or(hr.GetHost(), or(first(":authority"), first("host")))
	uri := or(hr.GetPath(), first(":path"))
	if a := first(":authority"); a != "" && a != host && !sameHost(a, host) {
		return Request{}, badRequest("host attribute and :authority disagree")
	}
	if p := first(":path"); p != "" && p != uri {
		return Request{}, badRequest("path attribute and :path disagree")
	}
	scheme := "http"
	if xfp := first("x-forwarded-proto"); xfp != "" {
		s, _, _ := strings.Cut(xfp, ",")
		scheme = strings.TrimSpace(s)
	} else if s := or(hr.GetScheme(), first(":scheme")); s != "" {
		scheme = s
	}
	scheme, err := parseScheme(scheme)
	if err != nil {
		return Request{}, err
	}
	_, origin := hdrs["origin"]
	_, acrm := hdrs["access-control-request-method"]
	_, cookie := hdrs["cookie"]
	_, authz := hdrs["authorization"]
	ch := clientHeaders{
		accept: hdrs["accept"], connection: hdrs["connection"], upgrade: hdrs["upgrade"],
		origin: origin, acrm: acrm, credentials: cookie || authz,
	}
	return buildRequest(method, scheme, host, uri, ch)
}

// grpcExtensions reads allow_groups and allow_users; nil when neither is
// set.
func grpcExtensions(ce map[string]string) *Extensions {
	groups, users := splitList(ce["allow_groups"]), splitList(ce["allow_users"])
	if len(groups) == 0 && len(users) == 0 {
		return nil
	}
	return &Extensions{AllowGroups: groups, AllowUsers: users}
}

func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// write puts a response in a CheckResponse. A 200 is an OkHttpResponse:
// the identity headers and Authorization overwrite the client's, and
// identity headers not set are removed (OkHttpResponse.headers_to_remove)
// so that a client cannot supply its own; a session allow may add
// Set-Cookie for the browser (response_headers_to_add). Anything else is a
// DeniedHttpResponse with the response's status, headers and body.
func (g *grpcAuthz) write(resp *response, v verdict) *authv3.CheckResponse {
	if resp.status == http.StatusOK {
		ok := &authv3.OkHttpResponse{}
		a := resp.identity
		if a == nil {
			ok.HeadersToRemove = []string{headerKey(HeaderUser), headerKey(HeaderEmail), headerKey(HeaderGroups), headerKey(HeaderGroupsTruncated)}
		} else {
			for _, kv := range [...]struct {
				k string
				v []string
			}{{HeaderUser, a.user}, {HeaderEmail, a.email}, {HeaderGroups, a.groups}, {HeaderGroupsTruncated, a.truncated}, {"Authorization", a.authorization}} {
				if kv.k == "Authorization" && g.memo.noToken {
					continue // authz.forward_token: false: the request's own goes on
				}
				if len(kv.v) == 0 {
					ok.HeadersToRemove = append(ok.HeadersToRemove, headerKey(kv.k))
					continue
				}
				ok.Headers = append(ok.Headers, overwrite(headerKey(kv.k), kv.v[0]))
			}
			if g.refresh != nil && v.kind == claims.KindSession {
				for _, sc := range g.refresh(v.claims, v.token) {
					ok.ResponseHeadersToAdd = append(ok.ResponseHeadersToAdd, &corev3.HeaderValueOption{
						Header:       &corev3.HeaderValue{Key: "set-cookie", Value: sc},
						AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
					})
				}
			}
		}
		return &authv3.CheckResponse{
			Status:       &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
		}
	}
	code := codes.Unauthenticated
	if resp.status == http.StatusForbidden {
		code = codes.PermissionDenied
	}
	hdrs := []*corev3.HeaderValueOption{overwrite("cache-control", "no-store")}
	if resp.location != "" {
		hdrs = append(hdrs, overwrite("location", resp.location))
	}
	if resp.wwwAuthenticate != "" {
		hdrs = append(hdrs, overwrite("www-authenticate", resp.wwwAuthenticate))
	}
	for _, f := range resp.headers {
		hdrs = append(hdrs, overwrite(headerKey(f.key), f.value))
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: v.result.String()},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode(resp.status)}, Headers: hdrs, Body: string(resp.body),
		}},
	}
}

func overwrite(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func headerKey(s string) string { return strings.ToLower(s) }
