package authz

import (
	"bytes"
	"html/template"
	"strings"
)

// forbiddenHTML is the 403 page for browsers: self-contained (no external
// assets, which the refused host could not serve anyway), naming the user
// and what the host requires.
const forbiddenHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Access denied</title>
<style>body{font-family:system-ui,sans-serif;max-width:38rem;margin:4rem auto;padding:0 1rem;color:#222;line-height:1.5}h1{font-size:1.4rem}</style>
</head>
<body>
<h1>Access denied</h1>
{{if .User}}<p>Signed in as <strong>{{.User}}</strong>; {{.Host}} requires {{.Rule}}.</p>
<p>If you should have access, ask for it, or <a href="{{.Logout}}">sign out</a> and sign in as someone else.</p>
{{else}}<p>{{.Host}} requires {{.Rule}}.</p>
{{end}}
</body>
</html>
`

// forbiddenCSP allows the page's inline style and nothing else.
const forbiddenCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// pages renders the check's few bodies. It is built once per front door.
type pages struct {
	forbidden *template.Template
	logout    string
}

func newPages(issuer string) (*pages, error) {
	t, err := template.New("forbidden").Parse(forbiddenHTML)
	if err != nil {
		return nil, err
	}
	return &pages{forbidden: t, logout: strings.TrimSuffix(issuer, "/") + "/logout"}, nil
}

// forbiddenView is what the 403 page and text say.
type forbiddenView struct {
	User, Host, Rule, Logout string
}

// forbiddenPage renders the browser 403 page.
func (p *pages) forbiddenPage(user, host, rule string) []byte {
	var b bytes.Buffer
	if err := p.forbidden.Execute(&b, forbiddenView{User: user, Host: host, Rule: rule, Logout: p.logout}); err != nil {
		// The template and its data are ours; fall back to the text.
		return []byte(forbiddenText(user, host, rule))
	}
	return b.Bytes()
}

// forbiddenText is the 403 body for everything but browsers; user is
// empty for a request refused without a credential (its path).
func forbiddenText(user, host, rule string) string {
	if user == "" {
		return "forbidden: " + host + " requires " + rule + "\n"
	}
	return "forbidden: signed in as " + user + "; " + host + " requires " + rule + "\n"
}
