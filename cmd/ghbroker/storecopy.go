package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ghbroker/ghbroker/internal/config"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/bolt"
)

// copyEngine is what store copy needs of both ends.
type copyEngine interface {
	store.Exporter
	store.Importer
}

func cmdStore(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "copy" {
		return usageErr("usage: ghbroker store copy --from CONFIG --to CONFIG [--force]")
	}
	fs := newFlagSet(e, "store copy")
	from := fs.String("from", "", "config file of the store to copy from")
	to := fs.String("to", "", "config file of the store to copy to")
	force := fs.Bool("force", false, "copy into a target that holds other records, replacing those with the same ids")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return usageErr("store copy needs --from CONFIG and --to CONFIG")
	}
	var cfgs [2]*config.Config
	for i, path := range []string{*from, *to} {
		c, err := config.Load(path, e.lookupEnv)
		if err != nil {
			return configErr(err)
		}
		cfgs[i] = c
	}
	if same(cfgs[0].Storage, cfgs[1].Storage) {
		return usageErr("--from and --to name the same store")
	}
	quiet := slog.New(slog.DiscardHandler)
	var ends [2]*engine
	for i, role := range []string{"source", "target"} {
		en, err := openEngine(ctx, cfgs[i].Storage, quiet, nil)
		if err != nil {
			if _, locked := errors.AsType[*bolt.LockedError](err); locked {
				return runtimeErr(fmt.Errorf("the %s bbolt file %s is held by a running ghbroker serve (or another command); stop it first: store copy needs the file to itself",
					role, cfgs[i].Storage.Bolt.Path))
			}
			return err
		}
		defer en.Close()
		ends[i] = en
	}
	src, ok1 := ends[0].Store.(copyEngine)
	dst, ok2 := ends[1].Store.(copyEngine)
	if !ok1 || !ok2 {
		return runtimeErr(errors.New("store copy: an engine cannot export or import"))
	}
	snap, err := store.Copy(ctx, src, dst, *force)
	if _, conflict := errors.AsType[*store.ConflictError](err); conflict {
		return runtimeErr(fmt.Errorf("%w; nothing was copied (use --force to copy anyway, replacing the target's records that have the source's ids)", err))
	}
	if err != nil {
		return runtimeErr(err)
	}
	fmt.Fprintf(e.stdout, "copied from %s to %s: %s\n", ends[0].describe(), ends[1].describe(), snap.Summary())
	return nil
}

// same reports whether two storage sections name one store.
func same(a, b config.Storage) bool {
	switch {
	case a.Etcd == nil && b.Etcd == nil:
		return a.Bolt.Path == b.Bolt.Path
	case a.Etcd != nil && b.Etcd != nil:
		return a.Etcd.Prefix == b.Etcd.Prefix && len(a.Etcd.Endpoints) > 0 && len(b.Etcd.Endpoints) > 0 &&
			a.Etcd.Endpoints[0] == b.Etcd.Endpoints[0]
	}
	return false
}
