package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/internal/config"
)

// The version the test stamps into the binary.
const (
	stampVersion = "v0.0.0-deploytest"
	stampCommit  = "d3p10y0"
)

// buildBinary builds ghbroker with scripts/build, the command the
// Dockerfile and CI run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ghbroker")
	cmd := exec.Command("bash", "scripts/build", bin)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "VERSION="+stampVersion, "COMMIT="+stampCommit)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build: %v\n%s", err, out)
	}
	return bin
}

// cleanEnv is the process environment without the secrets the example
// config names, whatever the developer's shell holds.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != config.SecretEnv && k != "GRAFANA_OAUTH_SECRET" {
			env = append(env, kv)
		}
	}
	return env
}

// secretEnv is cleanEnv plus the example's secrets.
func secretEnv() []string {
	env := cleanEnv()
	for _, k := range []string{config.SecretEnv, "GRAFANA_OAUTH_SECRET"} {
		v, _ := testEnv(k)
		env = append(env, k+"="+v)
	}
	return env
}

// run runs the binary and returns its exit code, stdout and stderr.
func run(t *testing.T, env []string, bin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("%s %v: %v", bin, args, err)
	return 0, "", ""
}

// TestBinaryWithTheExampleConfig builds the image's binary and runs it as
// the manifests do: check-config and version, then serve with the example
// config moved to loopback addresses and a temporary store, until it is
// ready; keys list/rotate through its admin socket; SIGTERM.
func TestBinaryWithTheExampleConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)

	t.Run("version", func(t *testing.T) {
		code, out, errOut := run(t, os.Environ(), bin, "version")
		want := fmt.Sprintf("ghbroker %s (commit %s, ", stampVersion, stampCommit)
		if code != 0 || !strings.HasPrefix(out, want) {
			t.Errorf("version: exit %d, %q%s; want %q…", code, out, errOut, want)
		}
	})

	t.Run("check-config", func(t *testing.T) {
		code, out, errOut := run(t, secretEnv(), bin, "check-config", "--config", baseConfigPath)
		if code != 0 || !strings.Contains(out, "ok") {
			t.Errorf("check-config %s: exit %d\n%s%s", baseConfigPath, code, out, errOut)
		}
		// Without the Secret's values it says which variable is missing.
		code, _, errOut = run(t, cleanEnv(), bin, "check-config", "--config", baseConfigPath)
		if code != 2 || !strings.Contains(errOut, config.SecretEnv) {
			t.Errorf("check-config without secrets: exit %d, %q; want 2 naming %s", code, errOut, config.SecretEnv)
		}
		// A copying mistake: exit 2 with FILE:LINE.
		bad := filepath.Join(t.TempDir(), "config.yaml")
		raw, _ := os.ReadFile(baseConfigPath)
		if err := os.WriteFile(bad, bytes.Replace(raw, []byte("issuer: https://"), []byte("issuer: http://"), 1), 0o600); err != nil {
			t.Fatal(err)
		}
		line := lineOf(t, string(raw), "issuer: https://", "")
		code, _, errOut = run(t, secretEnv(), bin, "check-config", "--config", bad)
		if want := fmt.Sprintf("%s:%d: ", bad, line); code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("check-config with an http issuer: exit %d, %q; want 2 and %q", code, errOut, want)
		}
	})

	t.Run("serve", func(t *testing.T) {
		dir, err := os.MkdirTemp("", "ghb") // short: the admin socket path has a length limit
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		main, authz, grpc, metrics := freePort(t), freePort(t), freePort(t), freePort(t)
		issuer := fmt.Sprintf("http://localhost:%d", main)
		cfgPath := loopbackConfig(t, dir, "serve.yaml", issuer, main, authz, grpc, metrics, filepath.Join(dir, "ghbroker.db"))

		srv := startProcess(t, secretEnv(), bin, "serve", "--config", cfgPath)
		base := fmt.Sprintf("http://127.0.0.1:%d", main)
		srv.waitReady(t, base+"/readyz")

		if code, _ := httpGet(t, base+"/healthz"); code != http.StatusOK {
			t.Errorf("/healthz: %d", code)
		}
		// Prometheus scrapes metrics.listen; the main listener has no
		// /metrics for a gateway route to publish.
		if code, body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics)); code != http.StatusOK || !bytes.Contains(body, []byte("ghbroker_")) {
			t.Errorf("metrics.listen /metrics: %d", code)
		}
		if code, _ := httpGet(t, base+"/metrics"); code == http.StatusOK {
			t.Errorf("main listener /metrics: %d, want none", code)
		}
		code, body := httpGet(t, base+"/.well-known/openid-configuration")
		var disco map[string]any
		if code != http.StatusOK || json.Unmarshal(body, &disco) != nil {
			t.Fatalf("discovery: %d %s", code, body)
		}
		// The endpoints the docs and grafana.ini use.
		for key, path := range map[string]string{
			"issuer": "", "jwks_uri": "/keys", "authorization_endpoint": "/authorize",
			"token_endpoint": "/token", "userinfo_endpoint": "/userinfo", "end_session_endpoint": "/logout",
		} {
			got, ok := disco[key]
			if !ok && key != "issuer" && key != "jwks_uri" {
				continue // not served yet by this build
			}
			if got != issuer+path {
				t.Errorf("discovery %s = %v, want %s", key, got, issuer+path)
			}
		}
		code, body = httpGet(t, base+"/keys")
		var jwks struct {
			Keys []map[string]any `json:"keys"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &jwks) != nil || len(jwks.Keys) == 0 {
			t.Errorf("/keys: %d %s", code, body)
		}

		// The check where the gateways call it: /authz on the main listener
		// (Ambassador HTTP mode with path_prefix, nginx) and every path of
		// authz.listen.
		checkPolicy(t, base+"/authz/")
		checkPolicy(t, fmt.Sprintf("http://127.0.0.1:%d/", authz))

		// docs/operations.md: keys list and rotate go through the running
		// server's admin socket.
		if code, out, errOut := run(t, secretEnv(), bin, "keys", "list", "--config", cfgPath); code != 0 || !strings.Contains(out, "current") {
			t.Errorf("keys list: exit %d\n%s%s", code, out, errOut)
		}
		if code, out, errOut := run(t, secretEnv(), bin, "keys", "rotate", "--config", cfgPath); code != 0 || !strings.Contains(out, "running server") {
			t.Errorf("keys rotate: exit %d\n%s%s", code, out, errOut)
		}

		t.Run("authz replica", func(t *testing.T) {
			testAuthzReplica(t, bin, dir, issuer)
		})

		if code := srv.stop(t); code != 0 {
			t.Errorf("serve exited %d after SIGTERM\n%s", code, srv.stderr.String())
		}
	})
}

// testAuthzReplica runs `ghbroker authz` as deploy/authz-replicas does:
// the same config, no secrets, no store, keys from the issuer.
func testAuthzReplica(t *testing.T, bin, dir, issuer string) {
	main, authz, grpc, metrics := freePort(t), freePort(t), freePort(t), freePort(t)
	cfgPath := loopbackConfig(t, dir, "authz.yaml", issuer, main, authz, grpc, metrics, "/nonexistent/ghbroker.db")
	p := startProcess(t, cleanEnv(), bin, "authz", "--issuer", issuer, "--config", cfgPath)
	select {
	case <-p.done:
		if strings.Contains(p.stderr.String(), `unknown command "authz"`) {
			t.Skip("this build has no `ghbroker authz` yet")
		}
	case <-time.After(300 * time.Millisecond):
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", main)
	p.waitReady(t, base+"/readyz")

	checkPolicy(t, fmt.Sprintf("http://127.0.0.1:%d/", authz))
	if code, _ := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics)); code != http.StatusOK {
		t.Errorf("replica metrics.listen /metrics: %d", code)
	}
	if code, _ := httpGet(t, base+"/metrics"); code == http.StatusOK {
		t.Errorf("replica main listener /metrics: %d, want none", code)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("authz exited %d after SIGTERM\n%s", code, p.stderr.String())
	}
}

// checkPolicy asks the check at url about two hosts of the example
// policy, without a credential: status.example.com is public, Grafana
// needs a team (401 for an API call).
func checkPolicy(t *testing.T, url string) {
	t.Helper()
	check := func(host string) int {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Host = host
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := check("status.localhost"); code != http.StatusOK {
		t.Errorf("%s: check of the public host: %d, want 200", url, code)
	}
	if code := check("grafana.localhost"); code != http.StatusUnauthorized {
		t.Errorf("%s: check of grafana without a credential: %d, want 401", url, code)
	}
}

// loopbackConfig writes deploy/base/config.yaml moved to loopback: the
// issuer and every example.com host under localhost, the listeners on the
// given ports, the store in dir.
func loopbackConfig(t *testing.T, dir, name, issuer string, main, authz, grpc, metrics int, store string) string {
	t.Helper()
	raw, err := os.ReadFile(baseConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, r := range [][2]string{
		{"issuer: https://auth.example.com", "issuer: " + issuer},
		{"example.com", "localhost"},
		{`listen: ":8080"`, fmt.Sprintf(`listen: "127.0.0.1:%d"`, main)},
		{`listen: ":8081"`, fmt.Sprintf(`listen: "127.0.0.1:%d"`, authz)},
		{`grpc_listen: ":9001"`, fmt.Sprintf(`grpc_listen: "127.0.0.1:%d"`, grpc)},
		{`listen: ":9090"`, fmt.Sprintf(`listen: "127.0.0.1:%d"`, metrics)},
		{"path: /var/lib/ghbroker/ghbroker.db", "path: " + store},
	} {
		if !strings.Contains(text, r[0]) {
			t.Fatalf("deploy/%s no longer contains %q", baseConfigPath, r[0])
		}
		text = strings.ReplaceAll(text, r[0], r[1])
	}
	path := filepath.Join(dir, name)
	if _, err := config.Parse(path, []byte(text), testEnv); err != nil {
		t.Fatalf("the loopback config is invalid:\n%v", err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// process is a started ghbroker.
type process struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
}

func startProcess(t *testing.T, env []string, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout = io.Discard
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitReady polls url until it answers 200, failing if the process exits.
func (p *process) waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("%v exited (%d) before it was ready:\n%s", p.cmd.Args, p.cmd.ProcessState.ExitCode(), p.stderr.String())
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200:\n%s", url, p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM, as Kubernetes does, and returns the exit code.
func (p *process) stop(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second): // terminationGracePeriodSeconds
		t.Fatalf("%v did not stop within 30s of SIGTERM", p.cmd.Args)
	}
	return p.cmd.ProcessState.ExitCode()
}

func httpGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// syncBuffer is a bytes.Buffer safe for a writing process and a reading
// test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
