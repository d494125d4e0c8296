package broker

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// discoveryDoc is the OpenID Provider Metadata (OIDC Discovery §3,
// RFC 8414 §2). It lists only what the broker supports.
type discoveryDoc struct {
	Issuer                           string   `json:"issuer"`
	AuthorizationEndpoint            string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                    string   `json:"token_endpoint,omitempty"`
	UserinfoEndpoint                 string   `json:"userinfo_endpoint,omitempty"`
	JWKSURI                          string   `json:"jwks_uri"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
	RequestParameterSupported        bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported     bool     `json:"request_uri_parameter_supported"`
}

func (s *Server) discoveryDocument() discoveryDoc {
	return discoveryDoc{
		Issuer:                           s.opts.Issuer,
		JWKSURI:                          s.opts.Issuer + "/keys",
		ResponseTypesSupported:           []string{"code"},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: s.opts.Keys.PublishedAlgorithms(),
		ClaimsSupported: []string{
			"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "sid",
			"name", "preferred_username", "picture", "email", "email_verified", "groups",
		},
		// OIDC Discovery §3: request_uri_parameter_supported defaults to
		// true, so it must be said out loud.
		RequestParameterSupported:    false,
		RequestURIParameterSupported: false,
	}
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	raw, err := json.Marshal(s.discoveryDocument())
	if err != nil {
		s.serverError(w, r, fmt.Errorf("discovery: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(raw)
}

// jwks serves the published key set. Its max-age is kept shorter than the
// time a next key is published before it signs (RFC 7517; OIDC Core §10.1.1),
// so a relying party that honours it always knows a kid before seeing it.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	raw := s.opts.Keys.JWKS()
	if len(raw) == 0 {
		unavailable(w, "signing keys are not loaded yet")
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(s.opts.JWKSMaxAge.Seconds())))
	_, _ = w.Write(raw)
}
