package main

import (
	"context"
)

func cmdDev(ctx context.Context, e env, args []string) error {
	return usageErr("dev: not yet")
}
