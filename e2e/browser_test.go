//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// newBrowser starts a headless Debian Chromium with a fresh profile.
func newBrowser(t *testing.T, extraFlags ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium is not installed at %s: run `make test`, which installs it (apt-get install chromium)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1100, 900),
	}
	opts = append(opts, extraFlags...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	return ctx
}

// screenshot saves the page to the test's artifact directory (or a temp
// dir) for a person to look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	dir := os.Getenv("GHBROKER_E2E_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err == nil {
		t.Logf("screenshot: %s", p)
	}
}

// TestDevSignInInChromium runs `ghbroker dev` and, in Chromium: opens a
// protected demo service, is sent to GitHub's user picker, signs in as a
// fixture user, lands back on the service; a second subdomain lets the user
// in without another sign-in (one SSO cookie on the parent domain); the
// signed-in page lists the teams; a user outside the admin team gets 403 on
// the admin service; a user outside the allowed org is refused.
func TestDevSignInInChromium(t *testing.T) {
	port := freePort(t)
	start(t, "ghbroker dev is running", "dev", "--port", fmt.Sprint(port))
	base := fmt.Sprintf("http://ghbroker.localhost:%d", port)
	app := fmt.Sprintf("http://app.ghbroker.localhost:%d/", port)
	admin := fmt.Sprintf("http://admin.ghbroker.localhost:%d/", port)
	ctx := newBrowser(t)

	signIn := func(start, login string) {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Navigate(start),
			chromedp.WaitVisible(chromedp.CSS(`[data-login="`+login+`"]`)),
			chromedp.Click(chromedp.CSS(`[data-login="`+login+`"]`)),
		)
		if err != nil {
			screenshot(t, ctx, "sign-in-failed")
			t.Fatalf("signing in as %s from %s: %v", login, start, err)
		}
	}

	signIn(app, "alice")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#demo-app`))); err != nil {
		t.Fatalf("not back on the app after sign-in: %v", err)
	}
	if u := text(t, ctx, "#user"); u != "alice" {
		t.Fatalf("app sees user %q", u)
	}
	screenshot(t, ctx, "app")

	// Single sign-on: the admin service needs no new sign-in.
	if err := chromedp.Do(ctx, chromedp.Navigate(admin), chromedp.WaitVisible(chromedp.CSS(`#demo-app`))); err != nil {
		t.Fatalf("admin service: %v", err)
	}
	if g := text(t, ctx, "#groups"); !strings.Contains(g, "acme/admins") {
		t.Fatalf("admin sees groups %q", g)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#signed-in`))); err != nil {
		t.Fatalf("signed-in page: %v", err)
	}
	screenshot(t, ctx, "signed-in")
	if login, teams := text(t, ctx, "#login"), text(t, ctx, "#teams"); login != "alice" || !strings.Contains(teams, "acme/sre") {
		t.Fatalf("signed-in page shows login %q teams %q", login, teams)
	}

	// Sign out, then bob: the app admits him, the admin service does not.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#sign-out`)), chromedp.WaitVisible(chromedp.CSS(`#signed-out`))); err != nil {
		t.Fatalf("sign-out: %v", err)
	}
	signIn(app, "bob")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#demo-app`)), chromedp.Navigate(admin)); err != nil {
		t.Fatalf("bob on the app: %v", err)
	}
	if body := text(t, ctx, "body"); !strings.Contains(body, "Signed in as bob") || !strings.Contains(body, "acme/admins") {
		t.Fatalf("admin service for bob says %q", body)
	}
	screenshot(t, ctx, "forbidden")

	// erin is in no allowed org.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/logout"), chromedp.Click(chromedp.CSS(`#confirm-sign-out`)),
		chromedp.WaitVisible(chromedp.CSS(`#signed-out`))); err != nil {
		t.Fatalf("sign-out confirmation: %v", err)
	}
	signIn(base+"/login", "erin")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`.problem`))); err != nil {
		t.Fatalf("refusal page: %v", err)
	}
	screenshot(t, ctx, "refused")
	if body := text(t, ctx, ".problem"); !strings.Contains(body, "not in an allowed organization") {
		t.Fatalf("refusal page says %q", body)
	}
}

// text returns the visible text of the first element matching css.
func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("reading %s: %v", css, err)
	}
	return s
}
