package github

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// paginate GETs firstURL and every page after it, following the Link
// header's rel="next" URL exactly as GitHub gives it — page URLs are never
// built here, so cursor-based pagination works as well as page numbers
// (https://docs.github.com/rest/using-the-rest-api/using-pagination-in-the-rest-api).
// Each page must be a JSON array of T. A next URL that leaves the API base's
// scheme and host stops the walk with ErrUnsafeNextLink before the token is
// sent anywhere; more than c.maxPages pages, or a next URL already visited,
// stops it with ErrTooManyPages.
func paginate[T any](ctx context.Context, c *Client, token, firstURL string) ([]T, error) {
	var all []T
	seen := make(map[string]bool)
	next := firstURL
	for pages := 0; next != ""; pages++ {
		if pages == c.maxPages || seen[next] {
			path := firstURL
			if u, err := url.Parse(firstURL); err == nil {
				path = u.Path
			}
			return nil, &APIError{
				Path:    path,
				Message: fmt.Sprintf("list did not end within %d pages", pages),
				Err:     ErrTooManyPages,
			}
		}
		seen[next] = true
		resp, err := c.get(ctx, token, next)
		if err != nil {
			return nil, err
		}
		if ids := parseSSOHeader(resp.header.Values("X-GitHub-SSO")).partialOrgIDs; len(ids) > 0 {
			// The list leaves out organizations whose SAML SSO this
			// token is not authorized for; only their ids are given.
			c.log.InfoContext(ctx, "github: list omits organizations that require SAML SSO authorization",
				"path", resp.url.Path, "organization_ids", ids)
		}
		var items []T
		if err := resp.decode(&items); err != nil {
			return nil, err
		}
		all = append(all, items...)
		next, err = c.nextPage(resp)
		if err != nil {
			return nil, err
		}
	}
	return all, nil
}

// nextPage returns the absolute rel="next" URL of resp, "" on the last page,
// or ErrUnsafeNextLink when the URL is not on the API base's origin.
func (c *Client) nextPage(resp *response) (string, error) {
	target := parseLinks(strings.Join(resp.header.Values("Link"), ","))["next"]
	if target == "" {
		return "", nil
	}
	ref, err := url.Parse(target)
	if err != nil {
		return "", malformed(resp.status, resp.url.Path, "unparsable Link rel=\"next\" URL")
	}
	u := resp.url.ResolveReference(ref)
	if !sameOrigin(c.api, u) {
		return "", &APIError{
			Status:  resp.status,
			Path:    resp.url.Path,
			Message: fmt.Sprintf("Link rel=\"next\" points to %s://%s, not %s://%s", u.Scheme, u.Host, c.api.Scheme, c.api.Host),
			Err:     ErrUnsafeNextLink,
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String(), nil
}

// sameOrigin reports whether u has base's scheme, host and port (RFC 6454
// origin), treating an omitted port as the scheme's default.
func sameOrigin(base, u *url.URL) bool {
	return strings.EqualFold(base.Scheme, u.Scheme) &&
		strings.EqualFold(base.Hostname(), u.Hostname()) &&
		port(base) == port(u) &&
		u.User == nil
}

// port returns u's port, or the default port of its scheme.
func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// parseLinks parses an RFC 8288 Link header value into a map from relation
// type (lower case) to target URI; the first link for a relation wins.
// Malformed parts are skipped, never fatal: the input is untrusted.
func parseLinks(h string) map[string]string {
	links := make(map[string]string)
	for {
		h = strings.TrimLeft(h, " \t,")
		if h == "" {
			return links
		}
		if h[0] != '<' {
			h = skipLinkValue(h)
			continue
		}
		end := strings.IndexByte(h, '>')
		if end < 0 {
			return links
		}
		target := strings.TrimSpace(h[1:end])
		h = h[end+1:]
		var rels []string
		// Parameters: *( OWS ";" OWS name [ "=" value ] ) up to "," or end.
		for {
			h = strings.TrimLeft(h, " \t")
			if h == "" || h[0] == ',' {
				break
			}
			if h[0] != ';' {
				h = skipLinkValue(h)
				break
			}
			h = strings.TrimLeft(h[1:], " \t")
			i := strings.IndexAny(h, "=;,")
			if i < 0 {
				i = len(h)
			}
			name := strings.TrimSpace(h[:i])
			h = h[i:]
			if h == "" || h[0] != '=' {
				continue
			}
			var value string
			value, h = linkParamValue(strings.TrimLeft(h[1:], " \t"))
			if strings.EqualFold(name, "rel") {
				rels = strings.Fields(value)
			}
		}
		for _, rel := range rels {
			rel = strings.ToLower(rel)
			if _, ok := links[rel]; !ok && target != "" {
				links[rel] = target
			}
		}
	}
}

// linkParamValue reads a token or a quoted string from the start of h and
// returns it and the rest of h.
func linkParamValue(h string) (value, rest string) {
	if h == "" || h[0] != '"' {
		i := strings.IndexAny(h, ";,")
		if i < 0 {
			i = len(h)
		}
		return strings.TrimSpace(h[:i]), h[i:]
	}
	var b strings.Builder
	for i := 1; i < len(h); i++ {
		switch h[i] {
		case '\\':
			if i+1 < len(h) {
				i++
				b.WriteByte(h[i])
			}
		case '"':
			return b.String(), h[i+1:]
		default:
			b.WriteByte(h[i])
		}
	}
	return b.String(), "" // unterminated quote: take the rest
}

// skipLinkValue drops input up to the next "," outside a quoted string.
func skipLinkValue(h string) string {
	quoted := false
	for i := 0; i < len(h); i++ {
		switch {
		case h[i] == '\\' && quoted:
			i++
		case h[i] == '"':
			quoted = !quoted
		case h[i] == ',' && !quoted:
			return h[i+1:]
		}
	}
	return ""
}
