package etcd_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/etcd"
	"github.com/ghbroker/ghbroker/store/etcd/etcdtest"
	"github.com/ghbroker/ghbroker/store/storetest"
)

// server is the one embedded etcd every test of the package shares, each
// store under a prefix of its own.
var server *etcdtest.Server

func TestMain(m *testing.M) {
	s, err := etcdtest.New("")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

// open opens a store on a fresh prefix of the shared server.
func open(t *testing.T, opts etcd.Options) *etcd.Store {
	t.Helper()
	if opts.Endpoints == nil {
		opts.Endpoints = server.Endpoints()
	}
	if opts.Prefix == "" {
		opts.Prefix = server.Prefix()
	}
	if opts.MonitorEvery == 0 {
		opts.MonitorEvery = -1
	}
	s, err := etcd.Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return open(t, etcd.Options{Now: now})
	}, storetest.ExpiresByLease())
}
