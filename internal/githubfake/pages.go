package githubfake

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
)

// The HTML pages a person sees: the sign-in page of the authorize step, a
// 404 page and an index at /. They are self-contained (no external assets).

const pageStyle = `body{font:14px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;background:#f6f8fa;color:#1f2328;margin:0}
main{max-width:460px;margin:40px auto;background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:24px}
h1{font-size:22px;font-weight:400;margin:0 0 8px}h1 small{color:#656d76;font-size:14px}
code{background:#eff1f3;border-radius:4px;padding:1px 4px;font-size:12px}
ul{list-style:none;padding:0;margin:16px 0}li{margin:6px 0}
button{font:inherit;cursor:pointer;border-radius:6px;border:1px solid #d0d7de;background:#f6f8fa;padding:6px 12px}
.users button{display:flex;gap:10px;align-items:center;width:100%;text-align:left}
.users button.suggested{border-color:#0969da;background:#ddf4ff}
.users img{border-radius:50%}.login{font-weight:600}.name,.orgs{color:#656d76}.orgs{margin-left:auto;font-size:12px}
.cancel{background:#fff;color:#cf222e}.error{color:#cf222e}footer,.muted{color:#656d76;font-size:12px}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;vertical-align:top}`

const signInHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in to GitHub (emulator)</title><style>` + pageStyle + `</style></head>
<body><main>
<h1>Sign in to GitHub <small>(emulator)</small></h1>
<p>to continue to <strong id="client-id">{{.ClientID}}</strong></p>
{{if .Scopes}}<p>Requested scopes: {{range .Scopes}}<code class="scope">{{.}}</code> {{end}}</p>{{else}}<p class="muted">No scopes requested: public information only.</p>{{end}}
<p class="muted">You will be redirected to <code>{{.Redirect}}</code></p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}" id="signin">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<ul class="users">
{{range .Users}}<li><button type="submit" name="login" value="{{.Login}}" id="login-{{.Login}}" data-login="{{.Login}}"{{if .Suggested}} class="suggested" autofocus{{end}}><img src="{{.Avatar}}" alt="" width="32" height="32"><span class="login">{{.Login}}</span><span class="name">{{.Name}}</span><span class="orgs">{{.Orgs}}</span></button></li>
{{end}}</ul>
<button type="submit" name="cancel" value="1" id="cancel" class="cancel">Cancel</button>
</form>
<footer>GitHub emulator (githubfake): a test double. No password is asked; pick an account.</footer>
</main></body></html>
`

const notFoundHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Page not found · GitHub (emulator)</title><style>` + pageStyle + `</style></head>
<body><main><h1>404</h1><p>This is not the web page you are looking for.</p></main></body></html>
`

const indexHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>GitHub emulator</title><style>` + pageStyle + `</style></head>
<body><main>
<h1>GitHub emulator <small>(githubfake)</small></h1>
<p class="muted">OAuth web flow at <code>/login/oauth/authorize</code> and <code>/login/oauth/access_token</code>;
REST API at <code>/</code> and <code>/api/v3/</code>.</p>
<h2>Users</h2><table>{{range .Users}}<tr><td><strong>{{.Login}}</strong></td><td>{{.Name}}</td><td class="muted">{{.Orgs}}</td></tr>{{end}}</table>
<h2>Organizations</h2><table>{{range .Orgs}}<tr><td><strong>{{.Login}}</strong>{{if .Restricted}} <span class="error">(restricts OAuth Apps)</span>{{end}}</td><td class="muted">{{.Teams}}</td></tr>{{end}}</table>
</main></body></html>
`

// pages are the parsed templates; parsing constants cannot fail.
func parsePages() *template.Template {
	t := template.Must(template.New("signin").Parse(signInHTML))
	template.Must(t.New("notfound").Parse(notFoundHTML))
	template.Must(t.New("index").Parse(indexHTML))
	return t
}

type hiddenField struct{ Name, Value string }

type pageUser struct {
	Login, Name, Avatar, Orgs string
	Suggested                 bool
}

// echoedParams are the authorize parameters the sign-in form carries back.
func echoedParams() []string {
	return []string{"client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method", "allow_signup", "prompt"}
}

func (s *Server) renderSignIn(w http.ResponseWriter, r *http.Request, req *authzRequest, status int, msg string) {
	data := struct {
		ClientID, Redirect, Action, Error string
		Scopes                            []string
		Hidden                            []hiddenField
		Users                             []pageUser
	}{ClientID: req.app.ClientID, Redirect: req.redirect, Action: r.URL.Path, Error: msg, Scopes: req.scopes}
	for _, k := range echoedParams() {
		if req.params.Has(k) {
			data.Hidden = append(data.Hidden, hiddenField{k, req.params.Get(k)})
		}
	}
	for _, u := range s.world().users {
		data.Users = append(data.Users, pageUser{
			Login: u.Login, Name: u.Name, Avatar: "/avatars/u/" + strconv.FormatInt(u.ID, 10) + "?v=4",
			Orgs: orgNames(u), Suggested: strings.EqualFold(u.Login, req.login),
		})
	}
	s.render(w, status, "signin", data)
}

func (s *Server) renderNotFound(w http.ResponseWriter, status int) {
	s.render(w, status, "notfound", nil)
}

// handleIndex serves GET /: what the fixture holds.
func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	type pageOrg struct {
		Login, Teams string
		Restricted   bool
	}
	var data struct {
		Users []pageUser
		Orgs  []pageOrg
	}
	for _, u := range s.world().users {
		data.Users = append(data.Users, pageUser{Login: u.Login, Name: u.Name, Orgs: orgNames(u)})
	}
	for _, o := range s.world().orgs {
		var teams []string
		for _, t := range o.teams {
			teams = append(teams, t.Slug)
		}
		data.Orgs = append(data.Orgs, pageOrg{Login: o.Login, Teams: strings.Join(teams, ", "), Restricted: s.isRestricted(o)})
	}
	s.render(w, http.StatusOK, "index", data)
}

func orgNames(u *userRec) string {
	if len(u.orgs) == 0 {
		return "no organization"
	}
	var names []string
	for _, o := range u.orgs {
		names = append(names, o.Login)
	}
	return strings.Join(names, ", ")
}

// render executes a page into memory first so a template error never leaves
// a half-written page; headers are set before WriteHeader.
func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var b strings.Builder
	if err := s.pages.ExecuteTemplate(&b, name, data); err != nil {
		s.log.Error("githubfake: render page", "page", name, "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "deny")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// handleAvatar serves GET /avatars/u/{id}: an SVG with the account's
// initial, so pages and clients showing avatar_url work offline.
func (s *Server) handleAvatar(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	initial := "?"
	for _, u := range s.world().users {
		if u.ID == id {
			initial = strings.ToUpper(u.Login[:1])
		}
	}
	for _, o := range s.world().orgs {
		if o.ID == id {
			initial = strings.ToUpper(o.Login[:1])
		}
	}
	svg := fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="460" height="460" viewBox="0 0 46 46">`+
		`<rect width="46" height="46" fill="hsl(%d,55%%,50%%)"/>`+
		`<text x="23" y="31" font-family="sans-serif" font-size="22" text-anchor="middle" fill="#fff">%s</text></svg>`,
		id*47%360, initial)
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write([]byte(svg))
}
