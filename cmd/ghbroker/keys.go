package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/ghbroker/ghbroker/internal/admin"
	"github.com/ghbroker/ghbroker/internal/config"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/store"
)

func cmdKeys(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "rotate") {
		return usageErr("usage: ghbroker keys list|rotate --config FILE")
	}
	sub := args[0]
	fs := newFlagSet(e, "keys "+sub)
	path := fs.String("config", "", "config file (YAML)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *path == "" {
		return usageErr("keys %s needs --config FILE", sub)
	}
	cfg, err := config.Load(*path, e.lookupEnv)
	if err != nil {
		return configErr(err)
	}
	ks, via, err := keysCommand(ctx, cfg, sub == "rotate")
	if err != nil {
		return err
	}
	if sub == "rotate" {
		fmt.Fprintf(e.stdout, "rotated (%s)\n", via)
	}
	printKeys(e.stdout, ks)
	return nil
}

// keysCommand asks a running server over its admin socket, and opens the
// store directly only when no server holds it. On etcd there is no socket:
// it changes the key set in etcd by compare-and-swap, and every running
// replica picks the change up through its watch.
func keysCommand(ctx context.Context, cfg *config.Config, rotate bool) (admin.KeySet, string, error) {
	if cfg.Storage.Etcd != nil {
		st, err := openEngine(ctx, cfg.Storage, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			return admin.KeySet{}, "", err
		}
		defer st.Close()
		ks, err := keysInStore(ctx, cfg, st, rotate)
		return ks, "in etcd; running replicas follow within seconds", err
	}
	if c, err := admin.Dial(admin.SocketPath(cfg.Storage.Bolt.Path)); err == nil {
		ks, err := c.Keys(ctx)
		if rotate {
			ks, err = c.Rotate(ctx)
		}
		if err != nil {
			return ks, "", runtimeErr(err)
		}
		return ks, "by the running server", nil
	} else if !errors.Is(err, admin.ErrNoServer) {
		return admin.KeySet{}, "", runtimeErr(err)
	}
	st, err := openStore(cfg.Storage.Bolt.Path, slog.New(slog.DiscardHandler))
	if err != nil {
		return admin.KeySet{}, "", err
	}
	defer st.Close()
	ks, err := keysInStore(ctx, cfg, st, rotate)
	return ks, "in the store file; no server was running", err
}

// keysInStore lists, or rotates and lists, the key set in an open store.
func keysInStore(ctx context.Context, cfg *config.Config, st store.KeyStore, rotate bool) (admin.KeySet, error) {
	km, err := keys.NewManager(ctx, st, keyOptions(cfg, slog.New(slog.DiscardHandler)))
	if err != nil {
		return admin.KeySet{}, runtimeErr(err)
	}
	if rotate {
		if _, err := km.Rotate(ctx, true); err != nil {
			return admin.KeySet{}, runtimeErr(err)
		}
	}
	return admin.Public(km.Keys()), nil
}

func printKeys(w io.Writer, ks admin.KeySet) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tKID\tALG\tCREATED\tUNTIL")
	for _, k := range ks.Keys {
		until := ""
		if !k.Until.IsZero() {
			until = k.Until.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.State, k.KID, k.Algorithm, k.Created.UTC().Format(time.RFC3339), until)
	}
	tw.Flush()
}
