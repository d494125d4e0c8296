package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// devRun is `ghbroker dev` running in-process for one test, its stdin a
// pipe the test writes commands to.
type devRun struct {
	port      int
	issuer    string
	out, errs *syncBuffer
	stdin     *io.PipeWriter
	cancel    context.CancelFunc
	done      chan struct{}
	code      int
	stopped   bool
}

// startDev runs `ghbroker dev --port P args…` until the test ends and
// waits for its banner.
func startDev(t *testing.T, args ...string) *devRun {
	t.Helper()
	port := pickPort(t)
	in, stdin := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	d := &devRun{port: port, issuer: fmt.Sprintf("http://ghbroker.localhost:%d", port), out: &syncBuffer{}, errs: &syncBuffer{},
		stdin: stdin, cancel: cancel, done: make(chan struct{})}
	e := env{stdin: in, stdout: d.out, stderr: d.errs, lookupEnv: func(string) (string, bool) { return "", false }}
	go func() {
		defer close(d.done)
		d.code = run(ctx, e, append([]string{"dev", "--port", strconv.Itoa(port)}, args...))
	}()
	t.Cleanup(func() { d.stop(t) })
	d.waitOutput(t, 0, "ghbroker dev is running")
	return d
}

// stop ends the run as Ctrl-C does and wants exit 0 within the deadline.
func (d *devRun) stop(t *testing.T) {
	t.Helper()
	if d.stopped {
		return
	}
	d.stopped = true
	d.cancel()
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("dev did not stop within 60s:\n%s", d.errs.String())
	}
	d.stdin.Close()
	if d.code != 0 {
		t.Errorf("dev exited %d:\n%s", d.code, d.errs.String())
	}
}

// waitOutput waits until stdout past offset from contains want, and
// returns that part of stdout.
func (d *devRun) waitOutput(t *testing.T, from int, want string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if out := d.out.String()[from:]; strings.Contains(out, want) {
			return out
		}
		select {
		case <-d.done:
			t.Fatalf("dev exited %d before printing %q:\n%s\n%s", d.code, want, d.out.String(), d.errs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev never printed %q:\n%s\n%s", want, d.out.String(), d.errs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// command types a line on dev's stdin and returns the answer, once it
// contains want.
func (d *devRun) command(t *testing.T, line, want string) string {
	t.Helper()
	from := len(d.out.String())
	if _, err := io.WriteString(d.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
	return d.waitOutput(t, from, want)
}

// devBrowser is a browser with a cookie jar; every *.localhost name is
// dialled on loopback, and redirects are returned, not followed.
type devBrowser struct{ http *http.Client }

func newDevBrowser(t *testing.T) *devBrowser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &devBrowser{http: &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request and returns the response with its body read.
func (b *devBrowser) do(t *testing.T, method, u string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(raw)
}

func (b *devBrowser) get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	return b.do(t, http.MethodGet, u, nil, nil)
}

// follow GETs u and its redirects until an answer that is not a redirect,
// or a redirect to a URL that starts with stop; it returns that response,
// its body, its URL and the responses' X-Ghbroker-Replica headers by path.
func (b *devBrowser) follow(t *testing.T, u, stop string) (*http.Response, string, string, map[string]string) {
	t.Helper()
	replicas := map[string]string{}
	for range 15 {
		resp, body := b.get(t, u)
		replicas[resp.Request.URL.Path] = resp.Header.Get(devReplicaHeader)
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" {
			return resp, body, u, replicas
		}
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		if stop != "" && strings.HasPrefix(next.String(), stop) {
			return resp, body, next.String(), replicas
		}
		u = next.String()
	}
	t.Fatalf("redirect loop from %s", u)
	return nil, "", "", nil
}

// signIn signs in as login through the emulator and returns the replica
// header of /callback's answer (the replica that created the session).
func (b *devBrowser) signIn(t *testing.T, issuer, login string) string {
	t.Helper()
	resp, body, at, replicas := b.follow(t, issuer+"/login?login_hint="+url.QueryEscape(login), "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="signed-in"`) || !strings.Contains(body, login) {
		t.Fatalf("sign-in as %s ended with %d at %s:\n%s", login, resp.StatusCode, at, body)
	}
	return replicas["/callback"]
}

// devTokens are the dev "grafana" client's tokens and the replica that
// issued them.
type devTokens struct {
	access, refresh, replica string
}

const devGrafanaRedirect = "http://localhost:3000/login/generic_oauth"

// codeFlow runs the code flow (PKCE) of the dev "grafana" client with a
// signed-in browser, asking for a refresh token.
func (b *devBrowser) codeFlow(t *testing.T, issuer string) devTokens {
	t.Helper()
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {"grafana"}, "redirect_uri": {devGrafanaRedirect}, "response_type": {"code"},
		"scope": {"openid profile groups offline_access"}, "state": {"st"}, "nonce": {"n"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	resp, body, at, _ := b.follow(t, issuer+"/authorize?"+q.Encode(), devGrafanaRedirect)
	back, err := url.Parse(at)
	if err != nil || back.Query().Get("code") == "" {
		t.Fatalf("authorize ended with %d at %s:\n%s", resp.StatusCode, at, body)
	}
	return b.token(t, issuer, url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")},
		"redirect_uri": {devGrafanaRedirect}, "code_verifier": {verifier}})
}

// token asks /token as the grafana client and wants tokens.
func (b *devBrowser) token(t *testing.T, issuer string, form url.Values) devTokens {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte("grafana:" + devGrafanaSecret))
	resp, body := b.do(t, http.MethodPost, issuer+"/token", form, map[string]string{"Authorization": "Basic " + auth})
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal([]byte(body), &tok); resp.StatusCode != http.StatusOK || err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token (%s): %d %s", form.Get("grant_type"), resp.StatusCode, body)
	}
	return devTokens{access: tok.AccessToken, refresh: tok.RefreshToken, replica: resp.Header.Get(devReplicaHeader)}
}

// userinfo asks /userinfo with an access token and returns the login and
// the replica that answered.
func (b *devBrowser) userinfo(t *testing.T, issuer, access string) (string, string) {
	t.Helper()
	resp, body := b.do(t, http.MethodGet, issuer+"/userinfo", nil, map[string]string{"Authorization": "Bearer " + access})
	var info struct {
		Login string `json:"preferred_username"`
	}
	if err := json.Unmarshal([]byte(body), &info); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("userinfo: %d %s", resp.StatusCode, body)
	}
	return info.Login, resp.Header.Get(devReplicaHeader)
}

// answering GETs u n times, each wanted 200 with want in the body, and
// counts the answers by replica.
func (b *devBrowser) answering(t *testing.T, u, want string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		resp, body := b.get(t, u)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("GET %s: %d (replica %q), want 200 with %q:\n%s", u, resp.StatusCode, resp.Header.Get(devReplicaHeader), want, body)
		}
		got[resp.Header.Get(devReplicaHeader)]++
	}
	return got
}

// replicaAddrs reads `status`: the address of every running replica.
func replicaAddrs(status string) map[string]string {
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`replica (\d)  running on ([0-9.:]+)  `).FindAllStringSubmatch(status, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func keysOf(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestDevReplicas: `dev --replicas 3` serves one broker from three
// replicas behind its gateway. A browser signs in and a relying party gets
// tokens; the replica that issued them is stopped for real (its port
// refuses connections) and nothing happens: the session reaches the demo
// service and the signed-in page, the access token /userinfo, the refresh
// token a new pair, all from the other two. Started again, it serves the
// same session. Ctrl-C removes the temporary directory.
func TestDevReplicas(t *testing.T) {
	d := startDev(t, "--replicas", "3", "--auto-login", "alice")
	banner := d.out.String()
	for _, want := range []string{"3 broker replicas on an embedded etcd", `"stop 2"`, devReplicaHeader} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner does not say %q:\n%s", want, banner)
		}
	}
	m := regexp.MustCompile(`embedded etcd in (\S+) \(deleted on exit\)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("the banner names no directory:\n%s", banner)
	}
	dir := m[1]
	appURL := fmt.Sprintf("http://app.ghbroker.localhost:%d/", d.port)
	b := newDevBrowser(t)

	// Round robin over the three.
	if got := keysOf(b.answering(t, d.issuer+"/", `id="signed-out"`, 6)); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Fatalf("answers came from replicas %v, want 1, 2 and 3", got)
	}
	b.signIn(t, d.issuer, "alice")
	tok := b.codeFlow(t, d.issuer)
	victim := tok.replica
	if victim == "" {
		t.Fatal("the token answer names no replica")
	}
	if resp, body := b.get(t, appURL); resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="user">alice<`) ||
		resp.Header.Get(devReplicaHeader) == "" || !strings.Contains(body, `id="replica"`) {
		t.Fatalf("the demo app: %d (replica %q):\n%s", resp.StatusCode, resp.Header.Get(devReplicaHeader), body)
	}

	addr := replicaAddrs(d.command(t, "status", "replica 3 "))[victim]
	if addr == "" {
		t.Fatalf("status names no address for replica %s", victim)
	}
	d.command(t, "stop "+victim, "replica "+victim+" stopped")
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("stopped replica %s still accepts connections on %s", victim, addr)
	}
	if st := d.command(t, "status", "replica 3 "); !strings.Contains(st, "replica "+victim+"  stopped") {
		t.Errorf("status after stop %s:\n%s", victim, st)
	}

	got := b.answering(t, d.issuer+"/", `id="signed-in"`, 6)
	if _, ok := got[victim]; ok || len(got) != 2 {
		t.Errorf("with replica %s stopped the signed-in page came from %v, want the two others", victim, keysOf(got))
	}
	if got := b.answering(t, appURL, `id="user">alice<`, 4); got[victim] != 0 {
		t.Errorf("the stopped replica %s answered the demo app's checks: %v", victim, got)
	}
	if login, by := b.userinfo(t, d.issuer, tok.access); login != "alice" || by == victim {
		t.Errorf("userinfo: %q from replica %s", login, by)
	}
	renewed := b.token(t, d.issuer, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.refresh}})
	if renewed.replica == victim || renewed.refresh == tok.refresh {
		t.Errorf("refresh: answered by replica %s, refresh token rotated: %v", renewed.replica, renewed.refresh != tok.refresh)
	}

	// Metrics are the broker's own: linking etcd's server registers its
	// collectors in the default registry, which ghbroker never serves.
	resp, metrics := b.get(t, d.issuer+"/metrics")
	if resp.StatusCode != http.StatusOK || !strings.Contains(metrics, "ghbroker_store_etcd_up 1") {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	if !defaultRegistryHas(t, "etcd_server_") {
		t.Error("the default registry has no etcd_server_ metric: this check proves nothing")
	}
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "etcd_") || strings.HasPrefix(l, "grpc_server_") {
			t.Errorf("/metrics serves the embedded etcd's metric %s", l)
			break
		}
	}
	for _, p := range []string{"/debug/pprof/", "/debug/vars"} {
		if resp, _ := b.get(t, d.issuer+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404 (http.DefaultServeMux is never served)", p, resp.StatusCode)
		}
	}

	if out := d.command(t, "stop "+victim, "\n"); !strings.Contains(out, "is not running") {
		t.Errorf("stop twice: %q", out)
	}
	d.command(t, "start "+victim, "replica "+victim+" started")
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := b.get(t, d.issuer+"/")
		if resp.Header.Get(devReplicaHeader) == victim {
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="signed-in"`) {
				t.Fatalf("restarted replica %s: %d\n%s", victim, resp.StatusCode, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted replica %s never answered", victim)
		}
	}
	if out := d.command(t, "frobnicate", "\n"); !strings.Contains(out, "commands: stop N, start N, status") {
		t.Errorf("unknown command: %q", out)
	}
	if out := d.command(t, "stop 4", "\n"); !strings.Contains(out, "N from 1 to 3") {
		t.Errorf("stop 4: %q", out)
	}

	// A connection the browser dialled but never used would hold the
	// shutdown for 5s (net/http waits that long for its first request).
	b.http.CloseIdleConnections()
	d.stop(t)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary directory %s is still there: %v", dir, err)
	}
}

// defaultRegistryHas reports whether prometheus's default registry has a
// metric whose name starts with prefix.
func defaultRegistryHas(t *testing.T, prefix string) bool {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), prefix) {
			return true
		}
	}
	return false
}

// TestDevOneReplica: without --replicas dev is one broker on a bbolt file
// in the temporary directory, with no replica header and no etcd.
func TestDevOneReplica(t *testing.T) {
	d := startDev(t, "--auto-login", "alice")
	banner := d.out.String()
	m := regexp.MustCompile(`Temporary store: (\S+) \(deleted on exit\)`).FindStringSubmatch(banner)
	if m == nil || strings.Contains(banner, "replicas") {
		t.Fatalf("banner:\n%s", banner)
	}
	dir := m[1]
	if _, err := os.Stat(filepath.Join(dir, "ghbroker.db")); err != nil {
		t.Errorf("no bbolt store: %v", err)
	}
	b := newDevBrowser(t)
	if by := b.signIn(t, d.issuer, "alice"); by != "" {
		t.Errorf("/callback answered with %s: %s", devReplicaHeader, by)
	}
	resp, body := b.get(t, fmt.Sprintf("http://app.ghbroker.localhost:%d/", d.port))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="user">alice<`) || strings.Contains(body, `id="replica"`) ||
		resp.Header.Get(devReplicaHeader) != "" {
		t.Errorf("the demo app: %d (replica %q):\n%s", resp.StatusCode, resp.Header.Get(devReplicaHeader), body)
	}
	if tok := b.codeFlow(t, d.issuer); tok.replica != "" {
		t.Errorf("/token answered with %s: %s", devReplicaHeader, tok.replica)
	}
	if strings.Contains(d.errs.String(), "etcd") {
		t.Errorf("a single dev broker mentions etcd:\n%s", d.errs.String())
	}
	// A connection the browser dialled but never used would hold the
	// shutdown for 5s (net/http waits that long for its first request).
	b.http.CloseIdleConnections()
	d.stop(t)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary directory %s is still there: %v", dir, err)
	}
}

func TestDevReplicasFlag(t *testing.T) {
	for _, n := range []string{"0", "10", "-1"} {
		code, _, errs := runCmd(t, nil, "dev", "--port", "1", "--replicas", n)
		if want := "--replicas must be between 1 and 9, not " + n; code != exitUsage || !strings.Contains(errs, want) {
			t.Errorf("--replicas %s: exit %d, %q; want 2 and %q", n, code, errs, want)
		}
	}
	if code, _, errs := runCmd(t, nil, "dev", "--replicas", "three"); code != exitUsage || !strings.Contains(errs, "invalid value") {
		t.Errorf("--replicas three: exit %d, %q", code, errs)
	}
}
