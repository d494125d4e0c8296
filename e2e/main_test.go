//go:build e2e

// Package e2e runs the built ghbroker binary against real parts: a real
// Chromium, real nginx, real OIDC client libraries. It needs the build tag
// e2e (scripts/test passes it) and the Debian packages that scripts/test
// installs when they are missing.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// binary is the ghbroker built once for all tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ghbroker-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "ghbroker")
	build := exec.Command("go", "build", "-o", binary, "../cmd/ghbroker")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ghbroker:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	// Below the kernel's ephemeral range (32768 and up on Linux), so that
	// outgoing connections cannot take the port before the server binds.
	for range 200 {
		p := 20000 + mathrand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// proc is a ghbroker process whose output the test can wait on.
type proc struct {
	cmd   *exec.Cmd
	lines chan string
}

// start runs the binary with args and returns once a line containing
// ready appears on its stdout or stderr.
func start(t *testing.T, ready string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, lines: make(chan string, 1000)}
	for _, r := range []io.Reader{stdout, stderr} {
		go func() {
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				select {
				case p.lines <- sc.Text():
				default:
				}
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	deadline := time.After(60 * time.Second)
	var seen []string
	for {
		select {
		case l := <-p.lines:
			seen = append(seen, l)
			if strings.Contains(l, ready) {
				return p
			}
		case <-deadline:
			t.Fatalf("%v never printed %q; output:\n%s", args, ready, strings.Join(seen, "\n"))
		}
	}
}

func waitHTTP(t *testing.T, u string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for range 300 {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered", u)
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
