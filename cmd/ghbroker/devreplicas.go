package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxDevReplicas bounds `dev --replicas`.
const maxDevReplicas = 9

// devReplicaHeader names the replica that answered, on every response the
// dev gateway passes on from a replica (and on the demo pages, for their
// check's answer). Only `dev --replicas` sends it.
const devReplicaHeader = "X-Ghbroker-Replica"

// runDevReplicas is `ghbroker dev --replicas n`: an embedded etcd, n
// broker replicas on it (one broker: same issuer, same config), each on a
// loopback port of its own, and in front of them the dev gateway on the
// one public port. The gateway serves the emulator and the demo services
// itself and sends every other request, and every check the demo services
// ask, to the next running replica, skipping one that refuses the
// connection. Lines on stdin stop and start replicas. On return (ctx
// done) the gateway drains, then the replicas stop, then etcd; the caller
// removes the directory.
func runDevReplicas(ctx context.Context, e env, w devWorld, n int) error {
	etcd, err := startDevEtcd(w.dir, w.logger)
	if err != nil {
		return runtimeErr(err)
	}
	defer etcd.Close()
	storage := fmt.Sprintf("etcd: {endpoints: [%s]}", etcd.endpoint)
	cfg, err := devConfig(w, "127.0.0.1:0", storage) // validated once, up front
	if err != nil {
		return err
	}
	rs := newDevReplicas(n, w.logger, func(ctx context.Context, i int) (*app, error) {
		cfg, err := devConfig(w, "127.0.0.1:0", storage) // a replica's own copy
		if err != nil {
			return nil, err
		}
		return newApp(ctx, cfg, w.logger.With("replica", i), appOptions{githubHTTP: w.ghClient})
	})
	defer rs.close()
	for i := 1; i <= n; i++ {
		if err := rs.start(i); err != nil {
			return err
		}
	}
	brokerProxy := rs.proxy()
	w.appDemo.check, w.adminDemo.check = brokerProxy, brokerProxy
	gw := &listener{name: "dev gateway", addr: w.addr, http: newHTTPServer(devGateway{hosts: w.hosts, broker: brokerProxy})}
	return serveAll(ctx, w.logger, cfg.Listeners, []*listener{gw}, func() {
		printDevBanner(e, w, fmt.Sprintf(`
%d broker replicas on an embedded etcd in %s (deleted on exit). The gateway
sends each request to the next running one; %s names it.
Type "stop 2", "start 2" or "status" and Enter. Ctrl-C stops everything.
`, n, w.dir, devReplicaHeader))
		if e.stdin != nil {
			go rs.control(e.stdin, e.stdout)
		}
	})
}

// devGateway is the dev gateway in front of the replicas: the emulator
// and the demo services by Host, the rest to the broker — the same routing
// as the broker's own router gives a single dev broker (a path under
// /authz is the check's whatever the Host).
type devGateway struct {
	hosts  map[string]http.Handler
	broker http.Handler
}

func (g devGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := g.hosts[r.Host]; ok && !strings.HasPrefix(r.URL.Path, checkPrefix) {
		h.ServeHTTP(w, r)
		return
	}
	g.broker.ServeHTTP(w, r)
}

// devReplicas are the broker replicas of `dev --replicas`, numbered from
// 1, and the round-robin upstream the dev gateway sends the broker's
// requests to (an http.RoundTripper, like an nginx upstream block).
type devReplicas struct {
	// build makes a fresh app for replica i; ctx ends its background work.
	build     func(ctx context.Context, i int) (*app, error)
	log       *slog.Logger
	transport *http.Transport
	next      atomic.Uint64

	// ctl serialises start, stop and close.
	ctl    sync.Mutex
	closed bool

	// mu guards every replica's run state.
	mu   sync.Mutex
	reps []*devReplica
}

// devReplica is one replica's run state.
type devReplica struct {
	n        int
	answered atomic.Int64
	// Under devReplicas.mu: addr is where it listens, "" while it is
	// stopped or stopping (the gateway then sends it nothing); done is
	// closed once its app has returned; stopping says that was asked for.
	addr     string
	cancel   context.CancelFunc
	done     chan struct{}
	stopping bool
}

func newDevReplicas(n int, logger *slog.Logger, build func(context.Context, int) (*app, error)) *devReplicas {
	rs := &devReplicas{build: build, log: logger, transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true, // pass Accept-Encoding and the answer through
	}}
	for i := 1; i <= n; i++ {
		rs.reps = append(rs.reps, &devReplica{n: i})
	}
	return rs
}

// errDevClosed refuses commands once dev is shutting down.
var errDevClosed = errors.New("shutting down")

// start builds replica i afresh (a new app on the same etcd: nothing of a
// stopped one survives but what it stored) and waits until it listens.
func (rs *devReplicas) start(i int) error {
	rs.ctl.Lock()
	defer rs.ctl.Unlock()
	if rs.closed {
		return errDevClosed
	}
	r := rs.reps[i-1]
	rs.mu.Lock()
	running := r.done != nil
	rs.mu.Unlock()
	if running {
		return fmt.Errorf("replica %d is already running", i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := rs.build(ctx, i)
	if err != nil {
		cancel()
		return fmt.Errorf("replica %d: %w", i, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- a.run(ctx) }()
	select {
	case <-a.ready:
	case err := <-errc:
		cancel()
		return fmt.Errorf("replica %d stopped at once: %v", i, err)
	}
	done := make(chan struct{})
	rs.mu.Lock()
	r.addr, r.cancel, r.done, r.stopping = a.addrs["listen"], cancel, done, false
	rs.mu.Unlock()
	go func() {
		err := <-errc
		rs.mu.Lock()
		asked := r.stopping
		r.addr, r.cancel, r.done = "", nil, nil
		rs.mu.Unlock()
		cancel()
		if !asked {
			rs.log.Error("replica exited", "replica", i, "err", err)
		}
		close(done)
	}()
	return nil
}

// stop shuts replica i down as `serve` does on SIGTERM: the gateway sends
// it nothing more, it drains its connections, its loops end, its store
// client closes. It returns once all that is done.
func (rs *devReplicas) stop(i int) error {
	rs.ctl.Lock()
	defer rs.ctl.Unlock()
	if rs.closed {
		return errDevClosed
	}
	if !rs.stopLocked(rs.reps[i-1]) {
		return fmt.Errorf("replica %d is not running", i)
	}
	return nil
}

// stopLocked stops r, under ctl; false if it was not running.
func (rs *devReplicas) stopLocked(r *devReplica) bool {
	rs.mu.Lock()
	if r.done == nil {
		rs.mu.Unlock()
		return false
	}
	r.stopping, r.addr = true, ""
	cancel, done := r.cancel, r.done
	rs.mu.Unlock()
	rs.transport.CloseIdleConnections()
	cancel()
	<-done
	return true
}

// close stops every running replica and refuses later commands.
func (rs *devReplicas) close() {
	rs.ctl.Lock()
	defer rs.ctl.Unlock()
	rs.closed = true
	var wg sync.WaitGroup
	for _, r := range rs.reps {
		wg.Go(func() { rs.stopLocked(r) })
	}
	wg.Wait()
	rs.transport.CloseIdleConnections()
}

// status describes every replica, one line each.
func (rs *devReplicas) status() string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var b strings.Builder
	for _, r := range rs.reps {
		state := "stopped"
		if r.addr != "" {
			state = "running on " + r.addr
		}
		fmt.Fprintf(&b, "replica %d  %s  requests: %d\n", r.n, state, r.answered.Load())
	}
	return b.String()
}

// errNoReplica is the gateway's answer when every replica is stopped.
var errNoReplica = errors.New("no broker replica is running")

// RoundTrip sends req to the next running replica; when one refuses the
// connection (it is stopping, or gone) the next one is tried, as an nginx
// upstream does. Nothing else is retried: a request a replica received
// is answered or failed by that replica.
func (rs *devReplicas) RoundTrip(req *http.Request) (*http.Response, error) {
	rs.mu.Lock()
	var live []*devReplica
	var addrs []string
	for _, r := range rs.reps {
		if r.addr != "" {
			live, addrs = append(live, r), append(addrs, r.addr)
		}
	}
	rs.mu.Unlock()
	body := req.Body
	fail := func(err error) (*http.Response, error) {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	if len(live) == 0 {
		return fail(errNoReplica)
	}
	first := int(rs.next.Add(1) % uint64(len(live)))
	var err error
	for k := range live {
		j := (first + k) % len(live)
		out := req.Clone(req.Context())
		out.URL.Host = addrs[j]
		if body != nil {
			// A refused connection reads nothing, so the next replica can
			// be sent the same body; the transport's Close must not end it.
			out.Body = io.NopCloser(body)
		}
		var resp *http.Response
		resp, err = rs.transport.RoundTrip(out)
		if err == nil {
			// The body is closed by its owner (the gateway's server, once
			// the handler returns).
			live[j].answered.Add(1)
			resp.Header.Set(devReplicaHeader, strconv.Itoa(live[j].n))
			return resp, nil
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			return fail(err)
		}
		rs.log.Warn("replica refused the connection; trying the next", "replica", live[j].n, "err", err)
	}
	return fail(err)
}

// proxy is the gateway's handler for the broker: the request passed on as
// the client sent it (Host, path, query and forwarding headers included;
// a single dev broker would see the same), through rs.
func (rs *devReplicas) proxy() http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "replica" // RoundTrip picks the replica
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.Out.Host = pr.In.Host
			for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v := pr.In.Header.Values(h); len(v) > 0 {
					pr.Out.Header[h] = v
				}
			}
		},
		Transport: rs,
		ErrorLog:  slog.NewLogLogger(rs.log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			msg := "The broker replica failed to answer.\n"
			if errors.Is(err, errNoReplica) {
				msg = "No broker replica is running: type \"start 1\" in the terminal of ghbroker dev.\n"
			}
			rs.log.Warn("dev gateway", "err", err)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, msg)
		},
	}
}

// control reads commands from in, one a line, and answers on out, until
// in ends.
func (rs *devReplicas) control(in io.Reader, out io.Writer) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		fmt.Fprint(out, rs.command(sc.Text()))
	}
}

// command runs one command line and returns its answer.
func (rs *devReplicas) command(line string) string {
	const help = "commands: stop N, start N, status (N from 1 to %d)\n"
	f := strings.Fields(line)
	switch {
	case len(f) == 0:
		return ""
	case len(f) == 1 && f[0] == "status":
		return rs.status()
	case len(f) != 2 || (f[0] != "stop" && f[0] != "start"):
		return fmt.Sprintf(help, len(rs.reps))
	}
	i, err := strconv.Atoi(f[1])
	if err != nil || i < 1 || i > len(rs.reps) {
		return fmt.Sprintf(help, len(rs.reps))
	}
	if f[0] == "stop" {
		if err := rs.stop(i); err != nil {
			return err.Error() + "\n"
		}
		return fmt.Sprintf("replica %d stopped; the others answer for it\n", i)
	}
	if err := rs.start(i); err != nil {
		return err.Error() + "\n"
	}
	return fmt.Sprintf("replica %d started\n", i)
}
