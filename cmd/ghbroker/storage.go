package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ghbroker/ghbroker/internal/config"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/bolt"
	"github.com/ghbroker/ghbroker/store/etcd"
)

// engine is an open store and what the commands do differently per
// engine: bolt has a file, an admin socket and a sweeper; etcd has none.
type engine struct {
	store.Store
	// bolt is set for the bbolt engine.
	bolt *bolt.Store
	// etcd is set for the etcd engine.
	etcd *etcd.Store
}

// describe names the store for logs and messages.
func (e *engine) describe() string {
	if e.etcd != nil {
		return "etcd " + strings.Join(e.etcd.Endpoints(), ",") + " prefix " + e.etcd.Prefix()
	}
	return e.bolt.Path()
}

// openEngine opens the store the config chooses. reg, when set, receives
// the etcd store's metrics.
func openEngine(ctx context.Context, s config.Storage, logger *slog.Logger, reg prometheus.Registerer) (*engine, error) {
	if s.Etcd == nil {
		st, err := openStore(s.Bolt.Path, logger)
		if err != nil {
			return nil, err
		}
		return &engine{Store: st, bolt: st}, nil
	}
	opts, err := etcdOptions(s.Etcd, logger, reg)
	if err != nil {
		return nil, configErr(err)
	}
	st, err := etcd.Open(ctx, opts)
	if err != nil {
		return nil, runtimeErr(fmt.Errorf("cannot open the etcd store: %w", err))
	}
	return &engine{Store: st, etcd: st}, nil
}

// etcdOptions turns storage.etcd into store options.
func etcdOptions(c *config.Etcd, logger *slog.Logger, reg prometheus.Registerer) (etcd.Options, error) {
	tlsConf, err := c.TLS.Config()
	if err != nil {
		return etcd.Options{}, fmt.Errorf("storage.etcd.tls: %w", err)
	}
	return etcd.Options{
		Endpoints: c.Endpoints, Prefix: c.Prefix,
		DialTimeout: c.DialTimeout.D(), RequestTimeout: c.RequestTimeout.D(),
		TLS: tlsConf, Username: c.Username, Password: c.Password,
		Logger: logger, Registerer: reg,
	}, nil
}

// openStore opens the bolt store and turns its typed failures into exit
// codes and one-sentence messages.
func openStore(path string, logger *slog.Logger) (*bolt.Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, runtimeErr(fmt.Errorf("cannot create the store directory: %w", err))
	}
	st, err := bolt.Open(path, bolt.Options{Timeout: 2 * time.Second, Logger: logger})
	if err != nil {
		return nil, runtimeErr(err)
	}
	return st, nil
}
