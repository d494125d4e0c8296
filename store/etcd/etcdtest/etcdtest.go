// Package etcdtest runs a real etcd server inside a test process, for the
// tests of store/etcd and of everything wired on it.
//
// It owns the embedded server (go.etcd.io/etcd/server/v3/embed): a
// single-member cluster in a temporary directory, on loopback ports chosen
// by a free-port helper, with fsync off (UnsafeNoFsync: the data is thrown
// away with the directory). It does not own the store: tests open
// store/etcd against Server.Endpoints, each under a prefix of its own
// (Server.Prefix), so that one server serves a whole test package.
package etcdtest

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/ghbroker/ghbroker/internal/freeport"
)

// startTimeout bounds the wait for the server to become ready.
const startTimeout = 20 * time.Second

// Server is a running embedded etcd server.
type Server struct {
	etcd     *embed.Etcd
	dir      string
	endpoint string
	prefixes atomic.Int64
	close    sync.Once
}

// New starts a server whose data lives in a new directory under dir (the
// system's temporary directory when dir is empty). Close stops it and
// removes the directory.
func New(dir string) (*Server, error) { return NewTLS(dir, nil) }

// NewTLS is New with the client port on https with tls, requiring client
// certificates signed by tls.CA (see WriteCerts).
func NewTLS(dir string, tls *TLSFiles) (*Server, error) {
	var lastErr error
	// The free ports may be taken between choosing and binding them:
	// try a few times.
	for range 3 {
		s, err := start(dir, tls)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func start(parent string, tls *TLSFiles) (*Server, error) {
	dir, err := os.MkdirTemp(parent, "etcdtest-")
	if err != nil {
		return nil, fmt.Errorf("etcdtest: %w", err)
	}
	ports, err := FreePorts(2)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	if tls != nil {
		client.Scheme = "https"
	}
	peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	cfg := embed.NewConfig()
	cfg.Name = "etcdtest"
	cfg.Dir = dir
	cfg.UnsafeNoFsync = true
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	if tls != nil {
		cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = tls.Cert, tls.Key
		cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = tls.CA, true
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("etcdtest: start: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("etcdtest: start: %w", err)
	case <-time.After(startTimeout):
		e.Close()
		os.RemoveAll(dir)
		return nil, errors.New("etcdtest: the server was not ready within " + startTimeout.String())
	}
	return &Server{etcd: e, dir: dir, endpoint: client.String()}, nil
}

// Start starts a server for one test and stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := New(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Endpoints returns the client URLs of the server.
func (s *Server) Endpoints() []string { return []string{s.endpoint} }

// Prefix returns a key prefix no earlier call returned, so that every store
// opened on the server starts empty.
func (s *Server) Prefix() string {
	return fmt.Sprintf("/test-%d/", s.prefixes.Add(1))
}

// Close stops the server and removes its data. Later calls do nothing.
func (s *Server) Close() {
	s.close.Do(func() {
		s.etcd.Close()
		os.RemoveAll(s.dir)
	})
}

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago (freeport.Loopback).
func FreePorts(n int) ([]int, error) { return freeport.Loopback(n) }
