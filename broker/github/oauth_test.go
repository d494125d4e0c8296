package github

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

func TestAuthCodeURL(t *testing.T) {
	c, err := New(Config{
		ClientID: "Iv1.abc", ClientSecret: "x",
		WebURL: "https://ghes.example.com", APIURL: "https://ghes.example.com/api/v3",
		RedirectURL: "https://auth.example.com/callback",
	})
	if err != nil {
		t.Fatal(err)
	}
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" // RFC 7636 Appendix B
	tests := []struct {
		name           string
		verifier, hint string
		wantChallenge  string
		wantLogin      string
		wantNoPKCE     bool
		selectAccount  bool
	}{
		{name: "pkce and hint", verifier: verifier, hint: "octocat",
			wantChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", wantLogin: "octocat"},
		{name: "no hint", verifier: verifier, wantChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
		{name: "no pkce", hint: "octocat", wantLogin: "octocat", wantNoPKCE: true},
		{name: "account picker", verifier: verifier, selectAccount: true, wantChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(c.AuthCodeURL("st4te", tt.verifier, tt.hint, tt.selectAccount))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := u.Scheme+"://"+u.Host+u.Path, "https://ghes.example.com/login/oauth/authorize"; got != want {
				t.Errorf("endpoint = %q, want %q", got, want)
			}
			q := u.Query()
			want := url.Values{
				"client_id":     {"Iv1.abc"},
				"redirect_uri":  {"https://auth.example.com/callback"},
				"response_type": {"code"},
				"scope":         {"read:org user:email"},
				"state":         {"st4te"},
			}
			if !tt.wantNoPKCE {
				want.Set("code_challenge", tt.wantChallenge)
				want.Set("code_challenge_method", "S256")
			}
			if tt.wantLogin != "" {
				want.Set("login", tt.wantLogin)
			}
			if tt.selectAccount {
				want.Set("prompt", "select_account")
			}
			if diff := cmp.Diff(want, q); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
		})
	}
}

// tokenEndpoint emulates POST /login/oauth/access_token as GitHub's
// "Authorizing OAuth apps" documents it: it checks the form, answers in the format Accept asks for
// (form-urlencoded by default) and reports errors with HTTP 200.
type tokenEndpoint struct {
	t          *testing.T
	errorCode  string // non-empty: answer this error (with 200)
	gotAccept  chan string
	wantVerify string
}

func (e *tokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/login/oauth/access_token" {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.gotAccept <- r.Header.Get("Accept")
	want := url.Values{
		"client_id":     {"Iv1.test"},
		"client_secret": {"s3cret"},
		"code":          {"c0de"},
		"grant_type":    {"authorization_code"},
		"redirect_uri":  {"https://auth.example.com/callback"},
		"code_verifier": {e.wantVerify},
	}
	if diff := cmp.Diff(want, r.PostForm); diff != "" {
		e.t.Errorf("token request form (-want +got):\n%s", diff)
	}
	body := map[string]string{"access_token": "gho_16C7e42F292c6912E7710c838347Ae178B4a", "scope": "read:org,user:email", "token_type": "bearer"}
	if e.errorCode != "" {
		body = map[string]string{
			"error":             e.errorCode,
			"error_description": "The code passed is incorrect or expired.",
			"error_uri":         "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code",
		}
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	v := url.Values{}
	for k, s := range body {
		v.Set(k, s)
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	_, _ = w.Write([]byte(v.Encode()))
}

func TestExchange(t *testing.T) {
	tests := []struct {
		name      string
		errorCode string
		wantErr   error
	}{
		{name: "success"},
		{name: "bad verification code", errorCode: CodeBadVerificationCode, wantErr: ErrBadVerificationCode},
		{name: "incorrect client credentials", errorCode: CodeIncorrectClientCredentials, wantErr: ErrIncorrectClientCredentials},
		{name: "redirect uri mismatch", errorCode: CodeRedirectURIMismatch, wantErr: ErrRedirectURIMismatch},
		{name: "unverified user email", errorCode: CodeUnverifiedUserEmail, wantErr: ErrUnverifiedUserEmail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := &tokenEndpoint{t: t, errorCode: tt.errorCode, gotAccept: make(chan string, 1), wantVerify: "v3rifier"}
			srv := httptest.NewServer(ep)
			defer srv.Close()
			c := newTestClient(t, srv, "", nil)

			tok, err := c.Exchange(t.Context(), "c0de", "v3rifier")
			if got := <-ep.gotAccept; got != "application/json" {
				t.Errorf("token request Accept = %q, want application/json", got)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if tok != "gho_16C7e42F292c6912E7710c838347Ae178B4a" {
					t.Errorf("token = %q", tok)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Exchange error = %v, want errors.Is %v", err, tt.wantErr)
			}
			var oe *OAuthError
			if !errors.As(err, &oe) || oe.Code != tt.errorCode || oe.Description == "" || oe.URI == "" {
				t.Errorf("OAuthError = %+v", oe)
			}
			if IsTemporary(err) {
				t.Errorf("IsTemporary(%v) = true", err)
			}
			for _, other := range []error{ErrBadVerificationCode, ErrIncorrectClientCredentials, ErrRedirectURIMismatch, ErrUnverifiedUserEmail} {
				if other != tt.wantErr && errors.Is(err, other) {
					t.Errorf("error also matches %v", other)
				}
			}
		})
	}
}

// TestExchangeFormDefault covers a token endpoint that ignores Accept and
// answers in GitHub's default form encoding, error included.
func TestExchangeFormDefault(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		if r.FormValue("code") == "bad" {
			_, _ = w.Write([]byte("error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired."))
			return
		}
		_, _ = w.Write([]byte("access_token=gho_form&scope=read%3Aorg%2Cuser%3Aemail&token_type=bearer"))
	}))
	defer srv.Close()
	c := newTestClient(t, srv, "", nil)
	tok, err := c.Exchange(t.Context(), "good", "")
	if err != nil || tok != "gho_form" {
		t.Errorf("Exchange = %q, %v; want gho_form", tok, err)
	}
	if _, err := c.Exchange(t.Context(), "bad", ""); !errors.Is(err, ErrBadVerificationCode) {
		t.Errorf("Exchange(bad) error = %v, want ErrBadVerificationCode", err)
	}
}

func TestExchangeFailures(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		check      func(t *testing.T, err error)
		wantTemp   bool
		wantRetry  time.Duration
		closeFirst bool
	}{
		{
			name: "502 html from a proxy",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadGateway)
				_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
			},
			check:     wantUnavailable(http.StatusBadGateway),
			wantTemp:  true,
			wantRetry: DefaultUnavailableWait,
		},
		{
			name: "503 with retry-after",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "120")
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			check:     wantUnavailable(http.StatusServiceUnavailable),
			wantTemp:  true,
			wantRetry: 120 * time.Second,
		},
		{
			name: "200 html",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte("<html>sign in to the wifi</html>"))
			},
			check: wantIs(ErrMalformedResponse),
		},
		{
			name: "200 json without token or error",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"token_type":"bearer"}`))
			},
			check: wantIs(ErrMalformedResponse),
		},
		{
			name: "404 without error code",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.NotFound(w, r)
			},
			check: wantIs(ErrNotFound),
		},
		{
			name:       "connection refused",
			handler:    func(http.ResponseWriter, *http.Request) {},
			closeFirst: true,
			check:      wantUnavailable(0),
			wantTemp:   true,
			wantRetry:  DefaultUnavailableWait,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			c := newTestClient(t, srv, "", nil)
			if tt.closeFirst {
				srv.Close()
			} else {
				defer srv.Close()
			}
			_, err := c.Exchange(t.Context(), "c0de", "v")
			if err == nil {
				t.Fatal("Exchange succeeded")
			}
			tt.check(t, err)
			if got := IsTemporary(err); got != tt.wantTemp {
				t.Errorf("IsTemporary(%v) = %v, want %v", err, got, tt.wantTemp)
			}
			if got := RetryAfter(err); got != tt.wantRetry {
				t.Errorf("RetryAfter = %v, want %v", got, tt.wantRetry)
			}
			var oe *OAuthError
			if errors.As(err, &oe) {
				t.Errorf("got an OAuthError %v for a non-OAuth failure", oe)
			}
		})
	}
}

func TestExchangeTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // runs before srv.Close
	c := newTestClient(t, srv, "", nil)

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := c.Exchange(ctx, "c0de", "")
		var ue *UnavailableError
		if !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error = %v, want *UnavailableError wrapping DeadlineExceeded", err)
		}
	})
	t.Run("caller cancels", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		select { // drop a stale arrival from the deadline case
		case <-arrived:
		default:
		}
		go func() { <-arrived; cancel() }()
		_, err := c.Exchange(ctx, "c0de", "")
		if !errors.Is(err, context.Canceled) || IsTemporary(err) {
			t.Errorf("error = %v, want context.Canceled and not temporary", err)
		}
	})
}

// TestExchangeRetrieveErrorShape pins the x/oauth2 behaviour Exchange relies
// on: a 200 carrying "error" is a *RetrieveError with ErrorCode set.
func TestExchangeRetrieveErrorShape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"error":"bad_verification_code"}`))
	}))
	defer srv.Close()
	conf := oauth2.Config{ClientID: "a", Endpoint: oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleInParams}}
	_, err := conf.Exchange(t.Context(), "x")
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "bad_verification_code" || re.Response.StatusCode != 200 {
		t.Fatalf("x/oauth2 error = %#v", err)
	}
}

// wantUnavailable checks for an *UnavailableError with the given status.
func wantUnavailable(status int) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ue *UnavailableError
		if !errors.As(err, &ue) || ue.Status != status {
			t.Errorf("error = %v, want *UnavailableError with status %d", err, status)
		}
	}
}

// wantIs checks errors.Is(err, target) and that err is an *APIError.
func wantIs(target error) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ae *APIError
		if !errors.Is(err, target) || !errors.As(err, &ae) {
			t.Errorf("error = %v, want *APIError matching %v", err, target)
		}
	}
}

// TestExchangeTruncatedBody cuts the token response mid-body: an outage.
func TestExchangeTruncatedBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"access_token\":")
		_ = buf.Flush()
	}))
	defer srv.Close()
	c := newTestClient(t, srv, "", nil)
	_, err := c.Exchange(t.Context(), "c0de", "")
	wantUnavailable(0)(t, err)
}
