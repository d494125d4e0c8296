// Command ghbroker is a GitHub → OpenID Connect identity broker with a
// stateless authorization check for API gateways.
//
// This package reads flags, the environment and the config file, and wires
// the packages together; it holds no logic of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes, as the README documents them: 0 ok, 1 a runtime failure,
// 2 a usage or configuration error.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// env is the process environment, injected so that tests can run commands
// in-process.
type env struct {
	// stdin is read by `dev --replicas` for its commands; nil reads nothing.
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
}

// exitError carries an exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func configErr(err error) error { return &exitError{code: exitUsage, err: err} }

func runtimeErr(err error) error { return &exitError{code: exitRuntime, err: err} }

const usage = `usage: ghbroker <command> [flags]

commands:
  serve --config FILE          run the broker
  dev [--replicas N]           zero-setup demo on localhost (GitHub emulator included;
                               N broker replicas on an embedded etcd)
  authz --issuer URL --config FILE
                               stateless authorization replica (keys from the issuer's JWKS)
  check-config --config FILE   validate a config file
  token --issuer URL --client-id ID [--client-secret-file FILE] [--id-token|--exec-credential] [--logout]
                               sign a command line in (device flow) and print a token
                               (a confidential client's secret: GHBROKER_CLIENT_SECRET or the file)
  keys list --config FILE      show the signing keys
  keys rotate --config FILE    rotate the signing keys now
  sessions list --config FILE [--user LOGIN]
                               show the live sessions
  sessions revoke --config FILE --user LOGIN | --session ID
                               end sessions everywhere: every check refuses their tokens
  store copy --from FILE --to FILE [--force]
                               copy every live record from one store to another
                               (bbolt to etcd and back; stop a bbolt broker first)
  version                      print version information
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	e := env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv}
	code := run(ctx, e, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, e env, args []string) int {
	err := dispatch(ctx, e, args)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintln(e.stderr, "ghbroker:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitRuntime
}

func dispatch(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return usageErr("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, e, rest)
	case "dev":
		return cmdDev(ctx, e, rest)
	case "authz":
		return cmdAuthz(ctx, e, rest)
	case "check-config":
		return cmdCheckConfig(e, rest)
	case "keys":
		return cmdKeys(ctx, e, rest)
	case "token":
		return cmdToken(ctx, e, rest)
	case "store":
		return cmdStore(ctx, e, rest)
	case "sessions":
		return cmdSessions(ctx, e, rest)
	case "version", "--version":
		fmt.Fprintf(e.stdout, "ghbroker %s (commit %s, %s %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return nil
	}
	fmt.Fprint(e.stderr, usage)
	return usageErr("unknown command %q", cmd)
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(e env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("ghbroker "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses args and refuses stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%s", err)
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
