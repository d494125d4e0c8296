package signin

import (
	"errors"
	"net/http"
	"time"

	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/broker/internal/page"
	"github.com/ghbroker/ghbroker/web"
)

// refusal is the page that says why a person GitHub vouched for may not
// sign in (answered with 403).
func (h *Handler) refusal(id *github.Identity) web.Problem {
	if len(id.SSORequired) > 0 {
		// GitHub would not say whether the person is a member until they
		// authorize ghbroker for the org's SAML single sign-on. The link is
		// GitHub's own, kept only when it is on the configured GitHub host
		// (broker/github drops any other).
		p := web.Problem{
			Title: "Authorize ghbroker for your organization's single sign-on",
			Message: "Signed in to GitHub as " + id.Login + ", but these organizations enforce SAML single sign-on, " +
				"and GitHub will not show ghbroker your membership until you authorize it there. " +
				"Follow the link, sign in with your organization's identity provider, then sign in here again.",
			Retry: "/login",
		}
		for _, o := range id.SSORequired {
			text := o.Org + ": authorize ghbroker for SAML single sign-on"
			if o.URL == "" {
				text = o.Org + ": enforces SAML single sign-on (ask an owner for the organization's SSO link)"
			}
			p.Items = append(p.Items, web.Link{Text: text, URL: o.URL})
		}
		return p
	}
	if len(id.RestrictedOrgs) > 0 {
		p := web.Problem{
			Title: "Your organization has not approved ghbroker yet",
			Message: "GitHub did not tell ghbroker whether you belong to these organizations, because they restrict " +
				"access by OAuth apps. An organization owner must approve the app on the page linked below; then sign in again.",
			Retry: "/login",
		}
		for _, o := range id.RestrictedOrgs {
			p.Items = append(p.Items, web.Link{Text: o + ": approve ghbroker (organization owners)", URL: h.github.OrgApprovalURL(o)})
		}
		return p
	}
	p := web.Problem{
		Title:   "You are not in an allowed organization",
		Message: "Signed in to GitHub as " + id.Login + ", but only members of these GitHub organizations may sign in:",
		Retry:   "/login",
	}
	for _, o := range h.sessions.AllowedOrgs() {
		p.Items = append(p.Items, web.Link{Text: o})
	}
	return p
}

// githubProblem answers a failed GitHub call: 503 with Retry-After when
// GitHub is down or rate-limited, and a page saying GitHub's answer made no
// sense otherwise. Both are logged with the request id.
func (h *Handler) githubProblem(w http.ResponseWriter, r *http.Request, doing string, err error) {
	h.log.Warn("GitHub call failed", "doing", doing, "request_id", page.RequestID(r.Context()), "err", err)
	var rl *github.RateLimitError
	title, msg := "GitHub is unavailable", "ghbroker could not reach GitHub while "+doing+". Your other signed-in services keep working."
	if errors.As(err, &rl) {
		title, msg = "GitHub is rate-limiting sign-ins", "GitHub asked ghbroker to slow down while "+doing+". Your other signed-in services keep working."
	}
	if !github.IsTemporary(err) {
		title, msg = "GitHub sent an unexpected answer", "ghbroker could not understand GitHub's answer while "+doing+"."
	}
	h.pages.Problem(w, r, http.StatusServiceUnavailable, web.Problem{Title: title, Message: msg, Retry: "/login"}, RetryAfter(err))
}

// RetryAfter is how long a person or client should wait after err.
func RetryAfter(err error) time.Duration {
	if d := github.RetryAfter(err); d > 0 {
		return d
	}
	return 30 * time.Second
}
