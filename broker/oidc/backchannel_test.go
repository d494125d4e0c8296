package oidc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/memory"
)

// TestBackchannelRelyingPartyThatHangs: a relying party that never
// answers costs a bounded number of timed-out tries, and telling it never
// blocks the sign-out that ended the session.
func TestBackchannelRelyingPartyThatHangs(t *testing.T) {
	var tries atomic.Int32
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tries.Add(1)
		<-release
	}))
	defer hang.Close()
	defer close(release)
	km, err := keys.NewManager(context.Background(), memory.New(memory.Options{}), keys.Options{Algorithm: keys.ES256})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBackchannel(BackchannelConfig{
		Issuer: "https://auth.example.test", Signer: km, Attempts: 2, Queue: 1,
		Clients: []Client{{ID: "slow", BackchannelLogoutURI: hang.URL}},
		HTTP:    &http.Client{Timeout: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 5 { // more than the queue holds: the extra ones are dropped, not waited for
		b.SessionEnded(store.Session{ID: "s", Subject: "1", RelyingParties: []string{"slow", "unknown"}})
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("SessionEnded took %s", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go b.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for tries.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := tries.Load(); n != 2 {
		t.Errorf("%d tries, want Attempts = 2 for the one queued delivery", n)
	}
}
