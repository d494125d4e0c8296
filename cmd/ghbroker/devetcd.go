//go:build !noetcdserver

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/ghbroker/ghbroker/internal/freeport"
)

// devEtcdStartTimeout bounds the wait for the embedded etcd to be ready.
const devEtcdStartTimeout = 20 * time.Second

// devEtcd is the embedded single-member etcd of `ghbroker dev --replicas`:
// its data in a directory of the dev run, its client and peer ports free
// loopback ports, its own log discarded (a failure of the running server
// is logged through its error channel).
type devEtcd struct {
	etcd     *embed.Etcd
	endpoint string
	done     chan struct{}
}

// startDevEtcd starts the server with its data in a new directory under
// parent, which the caller removes after Close.
func startDevEtcd(parent string, logger *slog.Logger) (*devEtcd, error) {
	var lastErr error
	// The free ports may be taken between choosing and binding them: try
	// a few times, each in a directory of its own (a member's directory
	// remembers its peer URL).
	for range 3 {
		dir, err := os.MkdirTemp(parent, "etcd-")
		if err != nil {
			return nil, fmt.Errorf("embedded etcd: %w", err)
		}
		d, err := tryDevEtcd(dir, logger)
		if err == nil {
			return d, nil
		}
		os.RemoveAll(dir)
		lastErr = err
	}
	return nil, lastErr
}

func tryDevEtcd(dir string, logger *slog.Logger) (*devEtcd, error) {
	ports, err := freeport.Loopback(2)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	cfg := embed.NewConfig()
	cfg.Name = "ghbroker-dev"
	cfg.Dir = dir
	// The data is thrown away with the directory.
	cfg.UnsafeNoFsync = true
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(devEtcdStartTimeout):
		e.Close()
		return nil, errors.New("embedded etcd: not ready within " + devEtcdStartTimeout.String())
	}
	d := &devEtcd{etcd: e, endpoint: client.String(), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for err := range e.Err() { // closed by Close
			logger.Error("embedded etcd failed", "err", err)
		}
	}()
	return d, nil
}

// Close stops the server; its directory stays for the caller to remove
// (with the rest of the dev run's).
func (d *devEtcd) Close() {
	d.etcd.Close()
	<-d.done
}
