//go:build noetcdserver

package main

import (
	"errors"
	"log/slog"
)

// The release build (scripts/build, the image) leaves etcd's server out:
// it would add about a third to the binary and 34 modules to its build
// info, for a demo. `go run ./cmd/ghbroker dev --replicas 3` from a clone
// has it.

// devEtcd is absent from this build.
type devEtcd struct{ endpoint string }

// errNoEmbeddedEtcd is what `dev --replicas` says in the release build.
var errNoEmbeddedEtcd = errors.New("this ghbroker was built without the embedded etcd that dev --replicas needs (the release build leaves it out); run it from a clone: go run ./cmd/ghbroker dev --replicas 3")

func startDevEtcd(string, *slog.Logger) (*devEtcd, error) { return nil, errNoEmbeddedEtcd }

func (*devEtcd) Close() {}
