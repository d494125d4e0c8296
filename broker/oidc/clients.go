package oidc

import (
	"github.com/ghbroker/ghbroker/broker/internal/oauth"
)

// Client is a static OIDC relying party (see oauth.Client for its fields).
type Client = oauth.Client

// supportedScopes are the scopes the broker knows.
var supportedScopes = oauth.SupportedScopes()

func (p *Provider) client(id string) (*Client, bool) { return p.clients.Lookup(id) }
