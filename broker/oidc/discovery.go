package oidc

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ghbroker/ghbroker/broker/internal/oauth"
	"github.com/ghbroker/ghbroker/broker/internal/page"
)

// discoveryDoc is the OpenID Provider Metadata (OIDC Discovery §3,
// RFC 8414 §2). It lists only what the broker supports.
type discoveryDoc struct {
	Issuer                                    string   `json:"issuer"`
	AuthorizationEndpoint                     string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                             string   `json:"token_endpoint,omitempty"`
	UserinfoEndpoint                          string   `json:"userinfo_endpoint,omitempty"`
	JWKSURI                                   string   `json:"jwks_uri"`
	DeviceAuthorizationEndpoint               string   `json:"device_authorization_endpoint,omitempty"`
	EndSessionEndpoint                        string   `json:"end_session_endpoint,omitempty"`
	RevocationEndpoint                        string   `json:"revocation_endpoint,omitempty"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint,omitempty"`
	ScopesSupported                           []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	ResponseModesSupported                    []string `json:"response_modes_supported,omitempty"`
	GrantTypesSupported                       []string `json:"grant_types_supported,omitempty"`
	SubjectTypesSupported                     []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported          []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	CodeChallengeMethodsSupported             []string `json:"code_challenge_methods_supported,omitempty"`
	ClaimsSupported                           []string `json:"claims_supported"`
	PromptValuesSupported                     []string `json:"prompt_values_supported,omitempty"`
	RequestParameterSupported                 bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported              bool     `json:"request_uri_parameter_supported"`
	ClaimsParameterSupported                  bool     `json:"claims_parameter_supported"`
	AuthorizationResponseISSParameterSupport  bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
	BackchannelLogoutSupported                bool     `json:"backchannel_logout_supported,omitempty"`
	BackchannelLogoutSessionSupported         bool     `json:"backchannel_logout_session_supported,omitempty"`
}

func (p *Provider) discoveryDocument() discoveryDoc {
	d := discoveryDoc{
		Issuer:                           p.issuer,
		JWKSURI:                          p.issuer + "/keys",
		ResponseTypesSupported:           []string{"code"},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: p.keys.PublishedAlgorithms(),
		ClaimsSupported: []string{
			"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "sid",
			"name", "preferred_username", "picture", "email", "email_verified", "groups",
		},
		// OIDC Discovery §3: request_uri_parameter_supported defaults to
		// true, so it must be said out loud.
		RequestParameterSupported:    false,
		RequestURIParameterSupported: false,
	}
	if p.sessions != nil {
		iss := p.issuer
		auth := []string{"client_secret_basic", "client_secret_post", "none"}
		d.AuthorizationEndpoint, d.TokenEndpoint, d.UserinfoEndpoint = iss+"/authorize", iss+"/token", iss+"/userinfo"
		d.EndSessionEndpoint, d.RevocationEndpoint, d.IntrospectionEndpoint = iss+"/logout", iss+"/revoke", iss+"/introspect"
		d.ScopesSupported = supportedScopes
		d.ResponseModesSupported = []string{"query"}
		d.GrantTypesSupported = []string{"authorization_code", "refresh_token"}
		if p.device != nil {
			// RFC 8628 §4.
			d.DeviceAuthorizationEndpoint = iss + "/device/code"
			d.GrantTypesSupported = append(d.GrantTypesSupported, oauth.DeviceCodeGrantType)
		}
		d.TokenEndpointAuthMethodsSupported = auth
		d.RevocationEndpointAuthMethodsSupported = auth
		d.IntrospectionEndpointAuthMethodsSupported = []string{"client_secret_basic", "client_secret_post"}
		d.CodeChallengeMethodsSupported = []string{"S256"}
		d.PromptValuesSupported = []string{"none", "login", "consent", "select_account"}
		d.AuthorizationResponseISSParameterSupport = true
		// OpenID Back-Channel Logout 1.0 §2.1: logout tokens carry sid.
		d.BackchannelLogoutSupported, d.BackchannelLogoutSessionSupported = true, true
	}
	return d
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	raw, err := json.Marshal(p.discoveryDocument())
	if err != nil {
		p.log.Error("internal error", "path", r.URL.Path, "err", fmt.Errorf("discovery: %w", err))
		writeJSON(w, http.StatusInternalServerError, errServer())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(raw)
}

// jwks serves the published key set. Its max-age is kept shorter than the
// time a next key is published before it signs (RFC 7517; OIDC Core §10.1.1),
// so a relying party that honours it always knows a kid before seeing it.
func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	raw := p.keys.JWKS()
	if len(raw) == 0 {
		page.Unavailable(w, "signing keys are not loaded yet")
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(p.jwksMaxAge.Seconds())))
	_, _ = w.Write(raw)
}
