package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ghbroker/ghbroker/broker/session"
	"github.com/ghbroker/ghbroker/internal/admin"
	"github.com/ghbroker/ghbroker/internal/config"
)

// cmdSessions is `ghbroker sessions list|revoke`: through the admin socket
// of a running bbolt broker (whose checks then refuse at once), or on the
// store directly (etcd: every replica's watch picks the revocations up;
// a bbolt file no server holds: the next serve starts with them).
func cmdSessions(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "revoke") {
		return usageErr("usage: ghbroker sessions list --config FILE [--user LOGIN] | sessions revoke --config FILE --user LOGIN | --session ID")
	}
	sub := args[0]
	fs := newFlagSet(e, "sessions "+sub)
	path := fs.String("config", "", "config file (YAML)")
	user := fs.String("user", "", "GitHub login")
	id := fs.String("session", "", "session id (the sid claim)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	switch {
	case *path == "":
		return usageErr("sessions %s needs --config FILE", sub)
	case sub == "revoke" && (*user == "") == (*id == ""):
		return usageErr("sessions revoke needs exactly one of --user LOGIN and --session ID")
	case sub == "list" && *id != "":
		return usageErr("sessions list takes --user, not --session")
	}
	cfg, err := config.Load(*path, e.lookupEnv)
	if err != nil {
		return configErr(err)
	}
	if cfg.Storage.Etcd == nil {
		c, err := admin.Dial(admin.SocketPath(cfg.Storage.Bolt.Path))
		switch {
		case err == nil:
			if sub == "list" {
				ss, err := c.Sessions(ctx, *user)
				if err != nil {
					return runtimeErr(err)
				}
				printSessions(e.stdout, ss)
				return nil
			}
			n, err := c.Revoke(ctx, *user, *id)
			if err != nil {
				return runtimeErr(err)
			}
			fmt.Fprintf(e.stdout, "revoked %d session(s) by the running server; every check refuses their tokens now\n", n)
			return nil
		case !errors.Is(err, admin.ErrNoServer):
			return runtimeErr(err)
		}
	}
	st, err := openEngine(ctx, cfg.Storage, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if sub == "list" {
		ss, err := session.Select(ctx, st, *user, "")
		if err != nil {
			return runtimeErr(err)
		}
		printSessions(e.stdout, admin.PublicSessions(ss))
		return nil
	}
	n, err := session.RevokeInStore(ctx, st, *user, *id, maxTokenLifetime(cfg), time.Now())
	if err != nil {
		return runtimeErr(err)
	}
	where := "in etcd; running replicas refuse their tokens within seconds"
	if cfg.Storage.Etcd == nil {
		where = "in the store file; no server was running"
	}
	fmt.Fprintf(e.stdout, "revoked %d session(s) %s\n", n, where)
	return nil
}

func printSessions(w io.Writer, ss []admin.SessionInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tLOGIN\tSUB\tSIGNED IN\tRENEWED\tEXPIRES\tSTATE\tGROUPS")
	for _, s := range ss {
		state := "active"
		if !s.SignedOut.IsZero() {
			state = "signed out (offline tokens only)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Login, s.Subject, s.AuthTime.UTC().Format(time.RFC3339),
			s.Renewed.UTC().Format(time.RFC3339), s.Expires.UTC().Format(time.RFC3339), state, strings.Join(s.Groups, ","))
	}
	tw.Flush()
}
