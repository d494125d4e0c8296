package sessioncookie

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func request(cookies ...string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	for _, c := range cookies {
		r.Header.Add("Cookie", c)
	}
	return r
}

func TestSplitAndJoin(t *testing.T) {
	long := strings.Repeat("a", 2*MaxChunkValue+10)
	cs := Split(nil, "_s", long, Attrs{Domain: "example.com", Secure: true, MaxAge: 60})
	var sent []string
	for _, c := range cs {
		if len(c.String()) > 4096 {
			t.Errorf("cookie %s is %d bytes", c.Name, len(c.String()))
		}
		if c.MaxAge > 0 {
			sent = append(sent, c.Name+"="+c.Value)
		}
	}
	if len(sent) != 3 {
		t.Fatalf("%d chunks, want 3", len(sent))
	}
	if got := Candidates([]string{strings.Join(sent, "; ")}, "_s"); !slices.Equal(got, []string{long}) {
		t.Errorf("join gave %d candidates", len(got))
	}
	// A short token after a chunked one expires the stale chunks.
	old := request(strings.Join(sent, "; "))
	var cleared []string
	for _, c := range Split(old, "_s", "short", Attrs{}) {
		if c.MaxAge < 0 {
			cleared = append(cleared, c.Name)
		}
	}
	if !slices.Equal(cleared, []string{"_s.0", "_s.1", "_s.2"}) {
		t.Errorf("cleared %v", cleared)
	}
}

func TestCandidates(t *testing.T) {
	tests := []struct {
		name   string
		cookie []string
		want   []string
	}{
		{"none", nil, nil},
		{"single", []string{"_s=tok"}, []string{"tok"}},
		{"same name twice (cookie tossing)", []string{"_s=evil; _s=good"}, []string{"evil", "good"}},
		{"chunks in order", []string{"_s.0=ab; _s.1=cd"}, []string{"abcd"}},
		{"chunks out of order on the wire", []string{"_s.1=cd; _s.0=ab"}, []string{"abcd"}},
		{"missing chunk stops the join", []string{"_s.0=ab; _s.2=ef"}, []string{"ab"}},
		{"duplicate chunk keeps the first", []string{"_s.0=ab; _s.0=xx; _s.1=cd"}, []string{"abcd"}},
		{"out of range chunk ignored", []string{"_s.99=zz; _s.0=ab"}, []string{"ab"}},
		{"other cookies ignored", []string{"_sx=1; other=2; _s.a=3"}, nil},
		{"at most four single values", []string{"_s=1; _s=2; _s=3; _s=4; _s=5"}, []string{"1", "2", "3", "4"}},
		{"two Cookie headers", []string{"_s.0=ab", "_s.1=cd"}, []string{"abcd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Candidates(tt.cookie, "_s"); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzCandidates(f *testing.F) {
	f.Add("_s=abc; _s.0=x; _s.1=y")
	f.Fuzz(func(t *testing.T, header string) {
		got := Candidates([]string{header}, "_s")
		if len(got) > 5 {
			t.Fatalf("%d candidates", len(got))
		}
	})
}

// TestClearIsBounded: a Cookie header stuffed with look-alike names (a
// 51 KB header once made /logout answer 2,901 Set-Cookie lines) gets back
// only the names that can exist.
func TestClearIsBounded(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	var b strings.Builder
	for i := range 1400 { // net/http reads at most 3,000 cookies
		fmt.Fprintf(&b, "_ghbroker.%d=x; _ghbroker.x%d=y; ", i, i)
	}
	b.WriteString("_ghbroker=z; _ghbroker.01=w")
	r.Header.Set("Cookie", b.String())
	got := Clear(r, "_ghbroker", Attrs{})
	if len(got) > MaxChunks+1 {
		t.Fatalf("Clear answered %d cookies, want at most %d", len(got), MaxChunks+1)
	}
	names := map[string]bool{}
	for _, c := range got {
		names[c.Name] = true
	}
	if !names["_ghbroker"] || !names["_ghbroker.0"] || !names[ChunkName("_ghbroker", MaxChunks-1)] || names["_ghbroker.01"] {
		t.Errorf("cleared %v", names)
	}
}
