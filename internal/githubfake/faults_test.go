package githubfake

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"
)

func TestFaultServerError(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	fake.SetAutoApprove("alice")
	tok, _ := fake.IssueToken("alice")
	cfg := oauthConfig(ts, oauth2.AuthStyleInParams)
	code := follow(t, cfg.AuthCodeURL("s")).Query().Get("code") // authorize is not faulted
	fake.SetFaults(Faults{ServerError: true})

	resp := apiGet(t, nil, ts.URL+"/api/v3/user", tok)
	wantStatus(t, resp, http.StatusBadGateway)
	body, _ := io.ReadAll(resp.Body)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "No server is currently available") {
		t.Errorf("outage: %s %s", resp.Header.Get("Content-Type"), body)
	}
	_, err := cfg.Exchange(context.Background(), code)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusBadGateway {
		t.Errorf("token endpoint during outage: %v", err)
	}
	fake.SetFaults(Faults{})
	if _, err := cfg.Exchange(context.Background(), code); err != nil {
		t.Errorf("code should survive an outage (never reached the handler): %v", err)
	}
}

func TestFaultRateLimits(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	tok, _ := fake.IssueToken("alice", "read:org")
	tests := []struct {
		name       string
		faults     Faults
		want       int
		retryAfter string
		remaining  string
		msgPrefix  string
	}{
		{"primary", Faults{RateLimited: true}, 403, "", "0", "API rate limit exceeded for user ID 1001."},
		{"secondary", Faults{SecondaryRateLimit: true}, 429, "60", "5000", "You have exceeded a secondary rate limit."},
		{"secondary wins", Faults{RateLimited: true, SecondaryRateLimit: true}, 429, "60", "5000", "You have exceeded a secondary rate limit."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake.SetFaults(tc.faults)
			defer fake.SetFaults(Faults{})
			resp := apiGet(t, nil, ts.URL+"/user/teams", tok)
			wantStatus(t, resp, tc.want)
			if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("retry-after = %q, want %q", got, tc.retryAfter)
			}
			if got := resp.Header.Get("X-RateLimit-Remaining"); got != tc.remaining {
				t.Errorf("remaining = %q, want %q", got, tc.remaining)
			}
			if e := decode[apiError](t, resp); !strings.HasPrefix(e.Message, tc.msgPrefix) {
				t.Errorf("message = %q", e.Message)
			}
		})
	}
}

func TestFaultBadJSON(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	tok, _ := fake.IssueToken("alice", "read:org")
	fake.SetFaults(Faults{BadJSON: true})
	resp := apiGet(t, nil, ts.URL+"/user/teams", tok)
	wantStatus(t, resp, http.StatusOK)
	var v any
	if err := json.NewDecoder(resp.Body).Decode(&v); err == nil {
		t.Error("truncated body decoded without error")
	}
	// Bodiless answers are left alone.
	wantStatus(t, apiGet(t, nil, ts.URL+"/orgs/acme/members/bob", tok), http.StatusNoContent)
}

func TestFaultHugeBody(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	tok, _ := fake.IssueToken("alice")
	fake.SetFaults(Faults{HugeBody: true})
	resp := apiGet(t, nil, ts.URL+"/user", tok)
	wantStatus(t, resp, http.StatusOK)
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if n < 20<<20 || strconv.FormatInt(n, 10) != resp.Header.Get("Content-Length") {
		t.Errorf("body %d bytes, Content-Length %s; want ≥ 20 MiB and equal", n, resp.Header.Get("Content-Length"))
	}
	// The bytes are a valid JSON array, so only a size limit catches it.
	rec := httptest.NewRecorder()
	writeHugeBody(rec)
	var arr []json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &arr); err != nil || len(arr) == 0 {
		t.Errorf("huge body is not a JSON array: %v", err)
	}
}

func TestFaultLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := New(testFixture(), Options{})
		tok, _ := fake.IssueToken("alice")
		fake.SetFaults(Faults{Latency: 3 * time.Second})

		start := time.Now()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/user", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		fake.ServeHTTP(rec, req)
		if d := time.Since(start); d != 3*time.Second || rec.Code != http.StatusOK {
			t.Errorf("took %v with status %d, want 3s and 200", d, rec.Code)
		}

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		rec = httptest.NewRecorder()
		fake.ServeHTTP(rec, req.WithContext(ctx))
		if d := time.Since(start); d != time.Second || rec.Body.Len() != 0 {
			t.Errorf("cancelled request took %v and wrote %q; want 1s and nothing", d, rec.Body)
		}
	})
}

func TestFaultLatencyOverNetwork(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	tok, _ := fake.IssueToken("alice")
	fake.SetFaults(Faults{Latency: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/user", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	start := time.Now()
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Error("client waited for the whole latency")
	}
}

func TestConcurrentCallsAndFaults(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	tok, _ := fake.IssueToken("alice", "read:org")
	fake.ResetCalls()
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i%10 == 0 {
				fake.SetFaults(Faults{BadJSON: i%20 == 0})
				fake.SetOrgRestricted("acme", i%20 == 0)
			}
			req, _ := http.NewRequest(http.MethodGet, ts.URL+"/user/teams", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	if got := fake.Calls()["GET /user/teams"]; got != n {
		t.Errorf("Calls()[GET /user/teams] = %d, want %d", got, n)
	}
	fake.ResetCalls()
	if len(fake.Calls()) != 0 {
		t.Error("ResetCalls left counts")
	}
}
