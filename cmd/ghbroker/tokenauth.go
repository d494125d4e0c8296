package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// clientSecretEnv carries the client secret of `ghbroker token`, out of
// sight of ps. It wins over the flags, as GHBROKER_GITHUB_CLIENT_SECRET
// wins over github.client_secret_file.
const clientSecretEnv = "GHBROKER_CLIENT_SECRET"

// clientSecret resolves the secret of a confidential client from, in
// order, GHBROKER_CLIENT_SECRET, --client-secret-file (trimmed) and
// --client-secret; "" means a public client. note, when set, says that the
// environment overrode a flag.
func clientSecret(e env, f tokenFlags) (secret, note string, err error) {
	if f.clientSecret != "" && f.clientSecretFile != "" {
		return "", "", usageErr("token: give --client-secret or --client-secret-file, not both")
	}
	if s, ok := e.lookupEnv(clientSecretEnv); ok && s != "" {
		switch {
		case f.clientSecretFile != "":
			note = clientSecretEnv + " is set: it wins over --client-secret-file"
		case f.clientSecret != "":
			note = clientSecretEnv + " is set: it wins over --client-secret"
		}
		return s, note, nil
	}
	if f.clientSecretFile != "" {
		raw, err := os.ReadFile(f.clientSecretFile)
		if err != nil {
			if pe, ok := errors.AsType[*fs.PathError](err); ok {
				err = pe.Err
			}
			return "", "", usageErr("token: cannot read --client-secret-file %s: %v", f.clientSecretFile, err)
		}
		s := strings.TrimSpace(string(raw))
		if s == "" {
			return "", "", usageErr("token: --client-secret-file %s is empty", f.clientSecretFile)
		}
		return s, "", nil
	}
	return f.clientSecret, "", nil
}

// authStyle picks how a confidential client authenticates at an endpoint
// whose discovery entry lists methods: client_secret_basic when listed or
// when nothing is listed (the default of RFC 8414 §2), else
// client_secret_post.
func authStyle(endpoint string, methods []string) (oauth2.AuthStyle, error) {
	switch {
	case len(methods) == 0 || slices.Contains(methods, "client_secret_basic"):
		return oauth2.AuthStyleInHeader, nil
	case slices.Contains(methods, "client_secret_post"):
		return oauth2.AuthStyleInParams, nil
	}
	return 0, fmt.Errorf("the issuer's %s takes neither client_secret_basic nor client_secret_post (it lists %s), so a client secret cannot be sent to it", endpoint, strings.Join(methods, ", "))
}

// formRequest is a form POST to endpoint carrying the client's
// credentials (oauth2 does it for /token itself): the id and secret
// form-urlencoded inside Basic (RFC 6749 §2.3.1), or client_secret in the
// form; nothing more for a public client, whose form names it.
func formRequest(ctx context.Context, endpoint string, form url.Values, style oauth2.AuthStyle, id, secret string) (*http.Request, error) {
	if secret != "" && style == oauth2.AuthStyleInParams {
		form.Set("client_secret", secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" && style == oauth2.AuthStyleInHeader {
		setBasic(req, id, secret)
	}
	return req, nil
}

// setBasic puts client_secret_basic credentials on req.
func setBasic(req *http.Request, id, secret string) {
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
}

// basicAuth sends every request through base with the client's Basic
// credentials: oauth2.Config.DeviceAuth sends only client_id, however the
// client authenticates at /token.
type basicAuth struct {
	base       http.RoundTripper
	id, secret string
}

// RoundTrip implements http.RoundTripper.
func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	setBasic(r, b.id, b.secret)
	return b.base.RoundTrip(r)
}

// refused turns an answer of the issuer into one sentence: invalid_client
// speaks of the client's credentials (never showing the secret), anything
// else says what failed while doing.
func (t *tokenRun) refused(doing string, err error) error {
	re, ok := errors.AsType[*oauth2.RetrieveError](err)
	switch {
	case ok && re.ErrorCode == "invalid_client" && t.secret != "":
		return runtimeErr(fmt.Errorf("token: the issuer refused client %q with the secret given (%s); check --client-secret-file, %s or --client-secret",
			t.f.clientID, oauthMessage(err), clientSecretEnv))
	case ok && re.ErrorCode == "invalid_client":
		return runtimeErr(fmt.Errorf("token: the issuer refused client %q (%s); a confidential client needs its secret: --client-secret-file or %s",
			t.f.clientID, oauthMessage(err), clientSecretEnv))
	}
	return runtimeErr(fmt.Errorf("token: %s: %s", doing, oauthMessage(err)))
}
