//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// loopbackClient dials 127.0.0.1 for every *.localhost name, as browsers
// resolve them.
func loopbackClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, _ := net.SplitHostPort(addr)
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// TestDeviceFlows runs `ghbroker dev` and completes the device
// authorization grant three ways, each approved in Chromium signed in
// through the GitHub emulator: golang.org/x/oauth2's DeviceAuth and
// DeviceAccessToken, `ghbroker token` as a child process (whose token the
// check accepts, and whose second run uses its cache), and openid-client
// v6's initiateDeviceAuthorization / pollDeviceAuthorizationGrant.
func TestDeviceFlows(t *testing.T) {
	port := freePort(t)
	start(t, "ghbroker dev is running", "dev", "--port", fmt.Sprint(port), "--auto-login", "alice")
	issuer := fmt.Sprintf("http://ghbroker.localhost:%d", port)
	hc := loopbackClient()
	ctx := newBrowser(t)

	approve := func(t *testing.T, name, complete string) {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Navigate(complete),
			chromedp.WaitVisible(chromedp.CSS(`#approve`)),
		)
		if err != nil {
			screenshot(t, ctx, name+"-approval-failed")
			t.Fatalf("approval page for %s: %v", complete, err)
		}
		screenshot(t, ctx, name+"-approval")
		if page := text(t, ctx, "#device"); !strings.Contains(page, "alice") || !strings.Contains(page, "groups") {
			t.Errorf("approval page says %q", page)
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#approve`)), chromedp.WaitVisible(chromedp.CSS(`#device-approved`))); err != nil {
			screenshot(t, ctx, name+"-approve-failed")
			t.Fatalf("approving: %v", err)
		}
	}

	t.Run("OAuth2DeviceAuth", func(t *testing.T) {
		octx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
		conf := &oauth2.Config{
			ClientID: "cli", Scopes: []string{"openid", "profile", "groups"},
			Endpoint: oauth2.Endpoint{TokenURL: issuer + "/token", DeviceAuthURL: issuer + "/device/code", AuthStyle: oauth2.AuthStyleInParams},
		}
		da, err := conf.DeviceAuth(octx)
		if err != nil {
			t.Fatalf("DeviceAuth: %v", err)
		}
		if da.VerificationURI != issuer+"/device" || len(da.UserCode) != 9 {
			t.Fatalf("device authorization %+v", da)
		}
		type result struct {
			tok *oauth2.Token
			err error
		}
		done := make(chan result, 1)
		go func() {
			tok, err := conf.DeviceAccessToken(octx, da)
			done <- result{tok, err}
		}()
		approve(t, "oauth2", da.VerificationURIComplete)
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatalf("DeviceAccessToken: %v", r.err)
			}
			if r.tok.AccessToken == "" || r.tok.Extra("id_token") == nil {
				t.Errorf("token %+v", r.tok)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("DeviceAccessToken did not return after approval")
		}
		// The code is used: approving it again says so.
		if err := chromedp.Do(ctx, chromedp.Navigate(da.VerificationURIComplete), chromedp.WaitVisible(chromedp.CSS(`#device-message`))); err != nil {
			t.Fatalf("used code page: %v", err)
		}
		if msg := text(t, ctx, "#device-message"); !strings.Contains(msg, "already used") {
			t.Errorf("used code page says %q", msg)
		}
	})

	t.Run("TokenCommand", func(t *testing.T) {
		cache := t.TempDir()
		run := func() (*exec.Cmd, *bytes.Buffer, chan string) {
			cmd := exec.Command(binary, "token", "--issuer", issuer, "--client-id", "cli", "--no-browser")
			cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache)
			var out bytes.Buffer
			cmd.Stdout = &out
			stderr, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := make(chan string, 100)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			return cmd, &out, lines
		}
		cmd, out, lines := run()
		var complete string
		for l := range lines {
			if u, ok := strings.CutPrefix(l, "or open "); ok {
				complete = u
				break
			}
		}
		if complete == "" {
			_ = cmd.Wait()
			t.Fatal("ghbroker token printed no verification URL")
		}
		go func() {
			for range lines {
			}
		}()
		approve(t, "token", complete)
		if err := waitCmd(cmd, 60*time.Second); err != nil {
			t.Fatalf("ghbroker token: %v", err)
		}
		tok := strings.TrimSpace(out.String())
		if strings.Count(tok, ".") != 2 {
			t.Fatalf("ghbroker token printed %q", tok)
		}
		// The check accepts the access token for the demo app.
		req, _ := http.NewRequest(http.MethodGet, issuer+"/authz", nil)
		req.Header.Set("X-Original-URL", fmt.Sprintf("http://app.ghbroker.localhost:%d/", port))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/authz with the token = %d", resp.StatusCode)
		}
		// The second run answers from the cache, without a device flow.
		cmd2, out2, lines2 := run()
		var said []string
		for l := range lines2 {
			said = append(said, l)
		}
		if err := waitCmd(cmd2, 20*time.Second); err != nil {
			t.Fatalf("second run: %v", err)
		}
		if got := strings.TrimSpace(out2.String()); got != tok || len(said) != 0 {
			t.Errorf("second run printed %q (first %q) and said %q", got, tok, said)
		}
	})

	t.Run("OpenIDClientDevice", func(t *testing.T) {
		if _, err := os.Stat("node/node_modules/openid-client"); err != nil {
			t.Fatal("openid-client is not installed: run `make test` (it runs npm ci in e2e/node)")
		}
		cmd := exec.Command("node", "device.mjs", issuer, "cli")
		cmd.Dir = "node"
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		var da struct {
			UserCode, VerificationURIComplete string `json:",omitempty"`
		}
		var first map[string]any
		if !sc.Scan() || json.Unmarshal(sc.Bytes(), &first) != nil {
			_ = cmd.Wait()
			t.Fatalf("device.mjs: %s", stderr.String())
		}
		da.VerificationURIComplete, _ = first["verification_uri_complete"].(string)
		da.UserCode, _ = first["user_code"].(string)
		if first["interval"] != 5.0 || first["expires_in"] != 600.0 || da.VerificationURIComplete == "" {
			t.Errorf("device authorization %v", first)
		}
		approve(t, "openid-client", da.VerificationURIComplete)
		var res map[string]any
		if !sc.Scan() || json.Unmarshal(sc.Bytes(), &res) != nil {
			_ = cmd.Wait()
			t.Fatalf("device.mjs gave no result: %s", stderr.String())
		}
		if err := waitCmd(cmd, 30*time.Second); err != nil {
			t.Fatalf("device.mjs: %v\n%s", err, stderr.String())
		}
		if res["sub"] != "1001" || res["login"] != "alice" || res["aud"] != "cli" {
			t.Errorf("openid-client results %v", res)
		}
	})
}

// waitCmd waits for cmd, killing it after d.
func waitCmd(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		return fmt.Errorf("still running after %s", d)
	}
}
