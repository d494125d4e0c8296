package etcd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A member lost, a leader election, a connection being re-established:
// etcd answers "Unavailable" for a moment, and the store tries again within
// the call's deadline rather than failing the request. A step whose outcome
// is known to be "not done" (a read, a lease grant, a transaction refused
// before it was proposed) is simply repeated. A write whose outcome is
// unknown (the connection broke, or the leader changed, after it was sent)
// is never repeated blindly: the store reads the key back and decides
// whether its own value is there (see update and createAll).

// transient reports whether err is etcd's "not now" (codes.Unavailable: no
// leader, leader changed, request timed out, no connection).
func transient(err error) bool {
	if errors.Is(err, errAttempt) {
		return true
	}
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable
	}
	if st, ok := status.FromError(err); ok {
		return st.Code() == codes.Unavailable
	}
	return false
}

// Pauses between attempts of a step etcd refused for the moment: doubling
// from 50 ms to at most 500 ms, jittered, within the call's deadline (an
// election takes about one election timeout, 1 s by default).
const (
	againBase = 50 * time.Millisecond
	againCap  = 500 * time.Millisecond
)

// again waits before attempt n+1 of a step that failed with a transient
// error; it returns false, without waiting, when ctx ends first.
func (s *Store) again(ctx context.Context, n int) bool {
	d := min(againCap, againBase<<min(n, 4))
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		s.metrics.transient.Inc()
		return true
	}
}

// repeat runs step, which must be safe to run again (a read, a lease
// grant), until it succeeds, fails for good, or ctx ends.
func (s *Store) repeat(ctx context.Context, step func() error) error {
	for n := 0; ; n++ {
		err := step()
		if !transient(err) || !s.again(ctx, n) {
			return err
		}
	}
}

// errAttempt marks an RPC that got no answer within its attempt's
// deadline: typically a proposal a follower forwarded to a leader that
// died, which etcd itself would hold for seconds. Its outcome is unknown.
var errAttempt = errors.New("etcd did not answer in time")

// within runs one RPC under the attempt deadline (a share of the call's
// deadline), so that a request stuck on a lost leader is abandoned in time
// to try again, after the election, within the same call.
func within[T any](s *Store, ctx context.Context, rpc func(context.Context) (T, error)) (T, error) {
	actx, cancel := context.WithTimeout(ctx, s.attemptTimeout)
	defer cancel()
	v, err := rpc(actx)
	if err != nil && ctx.Err() == nil && actx.Err() != nil {
		return v, fmt.Errorf("%w: %w", errAttempt, err)
	}
	return v, err
}
