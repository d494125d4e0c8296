package github

import (
	"context"
	"sync"
)

// group runs functions concurrently and keeps the first error; that error
// cancels the context handed to the others. It is a minimal stand-in for
// golang.org/x/sync/errgroup, which this module does not depend on.
type group struct {
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	cancel context.CancelCauseFunc
	sem    chan struct{} // nil: unbounded
}

// newGroup returns a group and the context its functions must use. limit > 0
// bounds how many functions run at once.
func newGroup(ctx context.Context, limit int) (*group, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	g := &group{cancel: cancel}
	if limit > 0 {
		g.sem = make(chan struct{}, limit)
	}
	return g, ctx
}

// Go runs f in a new goroutine. It may be called from inside a running
// function of the same group (before Wait returns).
func (g *group) Go(f func() error) {
	g.wg.Go(func() {
		if g.sem != nil {
			g.sem <- struct{}{}
			defer func() { <-g.sem }()
		}
		if err := f(); err != nil {
			g.once.Do(func() {
				g.err = err
				g.cancel(err)
			})
		}
	})
}

// Wait waits for every function, releases the group's context and returns
// the first error.
func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel(context.Canceled)
	return g.err
}
