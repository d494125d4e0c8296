package main

import (
	"fmt"

	"github.com/ghbroker/ghbroker/internal/config"
)

func cmdCheckConfig(e env, args []string) error {
	fs := newFlagSet(e, "check-config")
	path := fs.String("config", "", "config file (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageErr("check-config needs --config FILE")
	}
	if _, err := config.Load(*path, e.lookupEnv); err != nil {
		return configErr(err)
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", *path)
	return nil
}
