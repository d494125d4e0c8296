// Package web holds every page a person sees from ghbroker: HTML templates
// and the stylesheet, embedded with go:embed. It imports nothing of ours;
// the broker fills the page data and sets the HTTP status and headers.
package web

import (
	"embed"
	"html/template"
	"io"
	"io/fs"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Pages is the parsed set of page templates.
type Pages struct {
	t *template.Template
}

// Parse parses the embedded templates. It fails only if the embedded files
// are broken, which tests catch.
func Parse() (*Pages, error) {
	t, err := template.New("").ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	return &Pages{t: t}, nil
}

// Render writes the page name (e.g. "home.html") with data.
func (p *Pages) Render(w io.Writer, name string, data any) error {
	return p.t.ExecuteTemplate(w, name, data)
}

// Static is the stylesheet and other assets, served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory exists
	}
	return sub
}

// Team is one GitHub team on the signed-in page.
type Team struct {
	Org, Slug string
}

// Home is the data of the signed-in (or signed-out) page.
type Home struct {
	SignedIn bool
	// SignedOutNow says the user just signed out.
	SignedOutNow bool
	Login        string
	Name         string
	Email        string
	AvatarURL    string
	Orgs         []string
	Teams        []Team
	// Renews says when the session token renews, in words.
	Renews string
	// Expires says when the server-side session ends, in words.
	Expires string
	// LoginURL starts a sign-in; LogoutURL signs out (POST).
	LoginURL, LogoutURL string
	// CSRF is the sign-out form's token.
	CSRF string
}

// Logout is the data of the sign-out confirmation page.
type Logout struct {
	// Login is the signed-in person.
	Login string
	// CSRF is the form's token, bound to the session.
	CSRF string
	// Fields are the request's parameters, carried to the POST.
	Fields []Field
}

// Field is a hidden form field.
type Field struct {
	Name, Value string
}

// Problem is the data of an error page.
type Problem struct {
	// Title is the heading, e.g. "You are not in an allowed organization".
	Title string
	// Message explains what happened in a sentence or two.
	Message string
	// Items are listed under the message (orgs that would let the user in…).
	Items []Link
	// Retry, when set, is a link to try again.
	Retry string
	// RetryAfter, when set, says how long to wait before retrying.
	RetryAfter string
	// RequestID identifies the request in the logs.
	RequestID string
	// Home links back to the signed-in page.
	Home string
}

// Link is a text with an optional URL.
type Link struct {
	Text, URL string
}

// Device is the data of the device approval page (/device).
type Device struct {
	// Login is the signed-in person.
	Login string
	// CSRF is the approval form's token.
	CSRF string
	// UserCode is the code entered or to confirm, shown as XXXX-XXXX.
	UserCode string
	// Message explains why the code cannot be used, when it cannot.
	Message string
	// Confirm shows the request with Approve and Deny.
	Confirm bool
	// ClientName and Scopes say who asks for what.
	ClientName string
	Scopes     []string
	// ExpiresIn says how long the code stays usable, in words.
	ExpiresIn string
	// Done says the decision was recorded; Approved says which.
	Done, Approved bool
}
