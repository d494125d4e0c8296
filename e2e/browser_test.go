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

// TestDevSignInInChromium runs `ghbroker dev`, clicks through the GitHub
// emulator's sign-in as a fixture user and reads the teams on the
// signed-in page.
func TestDevSignInInChromium(t *testing.T) {
	port := freePort(t)
	start(t, "ghbroker dev is running", "dev", "--port", fmt.Sprint(port))
	base := fmt.Sprintf("http://localhost:%d", port)
	ctx := newBrowser(t)

	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#sign-in`)),
		chromedp.Click(chromedp.CSS(`#sign-in`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-login="alice"]`)),
	)
	if err != nil {
		t.Fatalf("reaching the GitHub emulator's user picker: %v", err)
	}
	screenshot(t, ctx, "picker")
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-login="alice"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#signed-in`)),
	)
	if err != nil {
		t.Fatalf("signing in: %v", err)
	}
	login := text(t, ctx, "#login")
	teams := text(t, ctx, "#teams")
	screenshot(t, ctx, "signed-in")
	if login != "alice" || !strings.Contains(teams, "acme/sre") {
		t.Fatalf("signed-in page shows login %q teams %q", login, teams)
	}

	// Sign out, and a user outside the allowed org is refused.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#sign-out`)),
		chromedp.WaitVisible(chromedp.CSS(`#signed-out`)),
		chromedp.Click(chromedp.CSS(`#sign-in`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-login="erin"]`)),
		chromedp.Click(chromedp.CSS(`[data-login="erin"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.problem`)),
	)
	if err != nil {
		t.Fatalf("sign-out and refused sign-in: %v", err)
	}
	body := text(t, ctx, ".problem")
	screenshot(t, ctx, "refused")
	if !strings.Contains(body, "not in an allowed organization") {
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
