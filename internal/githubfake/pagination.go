package githubfake

import (
	"net/url"
	"strconv"
	"strings"
)

// Pagination defaults, as documented for the GitHub REST API.
const (
	defaultPerPage = 30
	maxPerPage     = 100
)

// pageParams reads page (1-based) and per_page; missing, malformed or
// out-of-range values fall back to 1 and 30, and per_page is capped at 100.
func pageParams(q url.Values) (page, perPage int) {
	page, perPage = 1, defaultPerPage
	if p, err := strconv.Atoi(q.Get("page")); err == nil && p >= 1 {
		page = p
	}
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n >= 1 {
		perPage = min(n, maxPerPage)
	}
	return page, perPage
}

// paginate returns the requested page of items (never nil, so it encodes
// as []) and the Link header for it ("" when everything fits one page).
func paginate[T any](c *apiCall, items []T) ([]T, string) {
	page, perPage := pageParams(c.r.URL.Query())
	last := max(1, (len(items)+perPage-1)/perPage)
	out := []T{}
	if start := (page - 1) * perPage; start < len(items) {
		out = items[start:min(start+perPage, len(items))]
	}
	self := c.webBase + c.r.URL.EscapedPath()
	return out, linkHeader(self, c.r.URL.RawQuery, page, last)
}

// linkHeader formats GitHub's Link header: prev, next, last, first, in that
// order, each present only when it makes sense.
func linkHeader(self, rawQuery string, page, last int) string {
	if page == 1 && last == 1 {
		return ""
	}
	var parts []string
	add := func(p int, rel string) {
		parts = append(parts, "<"+self+"?"+withPage(rawQuery, p)+`>; rel="`+rel+`"`)
	}
	if page > 1 {
		add(page-1, "prev")
	}
	if page < last {
		add(page+1, "next")
		add(last, "last")
	}
	if page > 1 {
		add(1, "first")
	}
	return strings.Join(parts, ", ")
}

// withPage returns rawQuery with its page parameter replaced by p, keeping
// the other parameters in their original order and page last, as GitHub
// writes it (…?per_page=100&page=2).
func withPage(rawQuery string, p int) string {
	var kept []string
	for _, kv := range strings.Split(rawQuery, "&") {
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if key, err := url.QueryUnescape(k); err == nil && key == "page" {
			continue
		}
		kept = append(kept, kv)
	}
	return strings.Join(append(kept, "page="+strconv.Itoa(p)), "&")
}
