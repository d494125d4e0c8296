package broker_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/authz/verify"
	"github.com/ghbroker/ghbroker/broker"
	"github.com/ghbroker/ghbroker/broker/device"
	"github.com/ghbroker/ghbroker/broker/github"
	brokeroidc "github.com/ghbroker/ghbroker/broker/oidc"
	"github.com/ghbroker/ghbroker/broker/session"
	"github.com/ghbroker/ghbroker/broker/signin"
	"github.com/ghbroker/ghbroker/internal/githubfake"
	"github.com/ghbroker/ghbroker/internal/sessioncookie"
	"github.com/ghbroker/ghbroker/internal/testclock"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/bolt"
	"github.com/ghbroker/ghbroker/store/memory"
)

// world is a broker on auth.example.test with SSO on .example.test, a
// GitHub emulator, and a browser-like client whose resolver maps every
// *.example.test name to the broker.
type world struct {
	t        testing.TB
	issuer   string
	port     string
	srv      *httptest.Server
	gh       *githubfake.Server
	ghSrv    *httptest.Server
	broker   *broker.Server
	sessions *session.Manager
	store    store.Store
	keys     *keys.Manager
	verifier *verify.Verifier
	device   *device.Handler
	clock    *testclock.Clock
	logs     *strings.Builder
}

type worldOptions struct {
	fixture      *githubfake.Fixture
	allowedOrgs  []string
	policyGroups []string
	// clients, when set, registers OIDC relying parties (it gets the world
	// so that redirect URIs can use its port).
	clients func(w *world) []brokeroidc.Client
	// boltPath, when set, keeps the store in a bbolt file there.
	boltPath string
	// deviceLimits bounds wrong user codes (zero: the defaults).
	deviceLimits device.Limits
	// store, when set, opens the store on the world's clock (instead of
	// memory or boltPath).
	store func(t testing.TB, now func() time.Time) store.Store
}

func newWorld(t testing.TB, o worldOptions) *world {
	t.Helper()
	w := &world{t: t, clock: testclock.New(time.Now()), logs: &strings.Builder{}}
	var h http.Handler
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { h.ServeHTTP(rw, r) }))
	t.Cleanup(w.srv.Close)
	_, w.port, _ = net.SplitHostPort(w.srv.Listener.Addr().String())
	w.issuer = "http://auth.example.test:" + w.port

	fx := o.fixture
	if fx == nil {
		fx = githubfake.DefaultFixture()
	}
	for i := range fx.Apps {
		fx.Apps[i].CallbackURL = w.issuer + "/callback"
	}
	w.gh = githubfake.New(fx, githubfake.Options{})
	w.gh.SetAutoApprove(fx.Users[0].Login)
	w.ghSrv = httptest.NewServer(w.gh)
	t.Cleanup(w.ghSrv.Close)

	var err error
	switch {
	case o.store != nil:
		w.store = o.store(t, w.clock.Now)
	case o.boltPath != "":
		bs, err := bolt.Open(o.boltPath, bolt.Options{Now: w.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bs.Close() })
		w.store = bs
	default:
		w.store = memory.New(memory.Options{Now: w.clock.Now})
	}
	w.keys, err = keys.NewManager(context.Background(), w.store, keys.Options{Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.verifier, err = verify.New(verify.Options{Issuer: w.issuer, Keys: w.keys, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	client, err := github.New(github.Config{
		ClientID: fx.Apps[0].ClientID, ClientSecret: fx.Apps[0].ClientSecret,
		WebURL: w.ghSrv.URL, APIURL: w.ghSrv.URL + "/api/v3", RedirectURL: w.issuer + "/callback",
	})
	if err != nil {
		t.Fatal(err)
	}
	allowed := o.allowedOrgs
	if allowed == nil {
		allowed = []string{"acme"}
	}
	var clients []brokeroidc.Client
	if o.clients != nil {
		clients = o.clients(w)
	}
	logger := slog.New(slog.NewTextHandler(lockedWriter{w: w.logs}, nil))
	backchannel, err := brokeroidc.NewBackchannel(brokeroidc.BackchannelConfig{
		Issuer: w.issuer, Signer: w.keys, Clients: clients, Now: w.clock.Now, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	bctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go backchannel.Run(bctx)
	w.sessions, err = session.New(context.Background(), session.Config{
		Issuer: w.issuer, Signer: w.keys, Verifier: w.verifier, Store: w.store, GitHub: client,
		AllowedOrgs: allowed, GroupsFormat: "github",
		CookieDomain: ".example.test", TTL: time.Hour, MaxAge: 24 * time.Hour, PolicyGroups: o.policyGroups,
		Ended: backchannel, Now: w.clock.Now, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.device, err = device.New(context.Background(), device.Config{
		Issuer: w.issuer, Sessions: w.sessions, Store: w.store, Clients: clients, Limits: o.deviceLimits,
		Now: w.clock.Now, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	provider, err := brokeroidc.New(brokeroidc.Config{
		Issuer: w.issuer, Keys: w.keys, Verifier: w.verifier, Sessions: w.sessions, Store: w.store,
		Clients: clients, DeviceGrant: w.device, Now: w.clock.Now, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	signIn, err := signin.New(signin.Config{
		Issuer: w.issuer, Sessions: w.sessions, Store: w.store, GitHub: client,
		AllowedRedirectDomains: []string{".example.test"}, EndSession: provider,
		Now: w.clock.Now, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.broker, err = broker.New(broker.Config{Keys: w.keys, Handlers: []broker.Handler{signIn, provider, w.device}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	h = w.broker
	return w
}

type lockedWriter struct{ w *strings.Builder }

var logMu sync.Mutex

func (l lockedWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return l.w.Write(p)
}

// browser is a cookie-jar client that does not follow redirects, so each
// hop can be checked. Names under example.test resolve to the broker.
type browser struct {
	w      *world
	jar    *cookiejar.Jar
	client *http.Client
}

func (w *world) browser() *browser {
	jar, _ := cookiejar.New(nil)
	brokerAddr := w.srv.Listener.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		if strings.HasSuffix(host, ".example.test") {
			addr = brokerAddr
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	return &browser{w: w, jar: jar, client: &http.Client{
		Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// get fetches u and returns the response with its body read.
func (b *browser) get(u string) (*http.Response, string) {
	b.w.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.w.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	resp, err := b.client.Do(req)
	if err != nil {
		b.w.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// follow fetches u and follows redirects until a non-redirect answer or a
// URL for which stop returns true; it returns the last response and URL.
func (b *browser) follow(u string, stop func(string) bool) (*http.Response, string, string) {
	b.w.t.Helper()
	for range 10 {
		resp, body := b.get(u)
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			return resp, body, u
		}
		next, err := url.Parse(u)
		if err != nil {
			b.w.t.Fatal(err)
		}
		nu, err := next.Parse(loc)
		if err != nil {
			b.w.t.Fatal(err)
		}
		u = nu.String()
		if stop != nil && stop(u) {
			return resp, body, u
		}
	}
	b.w.t.Fatal("redirect loop")
	return nil, "", ""
}

// signIn runs /login?rd=… through GitHub and back; it returns the URL the
// broker finally redirected to.
func (b *browser) signIn(rd string) string {
	b.w.t.Helper()
	onBroker := func(u string) bool {
		return strings.HasPrefix(u, b.w.issuer+"/login") || strings.HasPrefix(u, b.w.issuer+"/callback")
	}
	resp, body, last := b.follow(b.w.issuer+"/login?rd="+url.QueryEscape(rd), func(u string) bool {
		return !onBroker(u) && !strings.HasPrefix(u, b.w.ghSrv.URL)
	})
	if onBroker(last) {
		b.w.t.Fatalf("sign-in ended on the broker at %s: %d\n%s", last, resp.StatusCode, body)
	}
	return last
}

// cookies returns the cookies the jar would send to u.
func (b *browser) cookies(u string) map[string]string {
	pu, _ := url.Parse(u)
	out := map[string]string{}
	for _, c := range b.jar.Cookies(pu) {
		out[c.Name] = c.Value
	}
	return out
}

// sessionToken joins the SSO cookie as a gateway would receive it.
func (b *browser) sessionToken(u string) string {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	pu, _ := url.Parse(u)
	for _, c := range b.jar.Cookies(pu) {
		req.AddCookie(c)
	}
	if c := sessioncookie.Candidates(req.Header["Cookie"], "_ghbroker"); len(c) > 0 {
		return c[0]
	}
	return ""
}

// confirmLogout answers the sign-out confirmation page body (from GET
// /logout): it posts the form back with its CSRF token and hidden fields.
func (b *browser) confirmLogout(body string) (*http.Response, string) {
	b.w.t.Helper()
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	if form.Get("csrf") == "" {
		b.w.t.Fatalf("no sign-out confirmation form:\n%s", body)
	}
	return b.postForm("/logout", form)
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
