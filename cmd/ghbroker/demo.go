package main

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// demoApp is an upstream service of `ghbroker dev` behind an in-process
// gateway that asks the authorization check exactly as Emissary's HTTP
// AuthService with `path_prefix: /authz` would: the original method, Host,
// path and query under the prefix, the default allowed headers plus
// `accept`. A 200 lets the request through with the identity headers;
// any other answer goes back to the browser as the gateway would pass it.
// Under `dev --replicas` the page and its X-Ghbroker-Replica header name
// the replica that answered the check.
type demoApp struct {
	check    http.Handler
	title    string
	requires string
	issuer   string
	others   []demoLink
}

type demoLink struct{ Title, URL string }

// forwardedHeaders are the request headers Emissary sends to an HTTP
// AuthService by default, plus the ones the shipped config adds.
var forwardedHeaders = []string{"Authorization", "Cookie", "From", "Proxy-Authorization", "User-Agent",
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Accept", "X-Request-Id"}

// allowedResponseHeaders are those Emissary copies from a denial to the
// client (with the ones the shipped AuthService lists).
var allowedResponseHeaders = []string{"Location", "Authorization", "Proxy-Authenticate", "Set-Cookie",
	"WWW-Authenticate", "Content-Type", "Cache-Control"}

func (d *demoApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sub, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+r.Host+"/authz"+r.URL.RequestURI(), nil)
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	sub.RequestURI = "/authz" + r.URL.RequestURI()
	for _, h := range forwardedHeaders {
		if v := r.Header.Values(h); len(v) > 0 {
			sub.Header[http.CanonicalHeaderKey(h)] = v
		}
	}
	sub.Header.Set("X-Forwarded-Proto", "http")
	rec := &capture{header: http.Header{}}
	d.check.ServeHTTP(rec, sub)
	replica := rec.header.Get(devReplicaHeader) // which replica checked, under dev --replicas
	if replica != "" {
		w.Header().Set(devReplicaHeader, replica)
	}
	if rec.status != http.StatusOK {
		for _, h := range allowedResponseHeaders {
			if v := rec.header.Values(h); len(v) > 0 {
				w.Header()[h] = v
			}
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
		return
	}
	var groups []string
	if g := rec.header.Get("X-Auth-Request-Groups"); g != "" {
		groups = strings.Split(g, ",")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = demoPage.Execute(w, map[string]any{
		"Title": d.title, "Requires": d.requires, "User": rec.header.Get("X-Auth-Request-User"),
		"Email": rec.header.Get("X-Auth-Request-Email"), "Groups": groups, "Others": d.others,
		"Logout": d.issuer + "/logout?rd=" + url.QueryEscape("http://"+r.Host+"/"), "Home": d.issuer + "/",
		"Replica": replica,
	})
}

// capture records a handler's answer.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) WriteHeader(s int) {
	if c.status == 0 {
		c.status = s
	}
}
func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · ghbroker demo</title>
<style>body{font:16px/1.5 system-ui,sans-serif;background:#f6f8fa;color:#1f2328;margin:0}
main{max-width:40rem;margin:2rem auto;background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:1.5rem 2rem}
code{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px}</style></head>
<body><main id="demo-app">
<h1>{{.Title}}</h1>
<p>A demo service behind the gateway. This host admits <strong>{{.Requires}}</strong>.</p>
<p>The check let you in as <strong id="user">{{.User}}</strong>{{if .Email}} ({{.Email}}){{end}}, with the groups
<span id="groups">{{range $i, $g := .Groups}}{{if $i}}, {{end}}<code>{{$g}}</code>{{end}}</span>.</p>
{{if .Replica}}<p>Broker replica <strong id="replica">{{.Replica}}</strong> answered the check.</p>{{end}}
<p>Other services: {{range .Others}}<a href="{{.URL}}">{{.Title}}</a> {{end}}· <a href="{{.Home}}">your sign-in</a> · <a id="logout" href="{{.Logout}}">sign out</a></p>
</main></body></html>
`))
