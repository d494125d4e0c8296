package memory_test

import (
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/memory"
	"github.com/ghbroker/ghbroker/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return memory.New(memory.Options{Now: now})
	})
}
