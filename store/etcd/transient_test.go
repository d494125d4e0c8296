package etcd

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"no leader", rpctypes.ErrNoLeader, true},
		{"leader changed", rpctypes.ErrLeaderChanged, true},
		{"request timed out", rpctypes.ErrTimeout, true},
		{"grpc unavailable", status.Error(codes.Unavailable, "connection refused"), true},
		{"attempt timed out", errAttempt, true},
		{"lease not found", rpctypes.ErrLeaseNotFound, false},
		{"permission denied", rpctypes.ErrPermissionDenied, false},
		{"caller canceled", context.Canceled, false},
		{"caller's deadline", context.DeadlineExceeded, false},
		{"nil", nil, false},
	} {
		if got := transient(c.err); got != c.want {
			t.Errorf("transient(%s) = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestWithin: an RPC that outlives its attempt deadline is reported as
// errAttempt (try again); one whose caller gave up is the caller's error.
func TestWithin(t *testing.T) {
	s := &Store{attemptTimeout: 20 * time.Millisecond}
	stuck := func(c context.Context) (int, error) { <-c.Done(); return 0, c.Err() }
	if _, err := within(s, t.Context(), stuck); !errors.Is(err, errAttempt) || !transient(err) {
		t.Errorf("a stuck RPC = %v, want errAttempt", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := within(s, ctx, stuck); errors.Is(err, errAttempt) || !errors.Is(err, context.Canceled) {
		t.Errorf("an RPC of a canceled call = %v, want context.Canceled", err)
	}
}
