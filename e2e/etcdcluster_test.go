//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdPath is Debian's etcd-server, which scripts/test installs.
const etcdPath = "/usr/bin/etcd"

// etcdMember is one etcd process of a test cluster.
type etcdMember struct {
	name, client, peer, dir string
	cmd                     *exec.Cmd
}

// etcdCluster is a cluster of real etcd processes on loopback ports.
type etcdCluster struct {
	t       *testing.T
	members []*etcdMember
	initial string
}

// startEtcd starts an n-member cluster and waits until every member is
// healthy.
func startEtcd(t *testing.T, n int) *etcdCluster {
	t.Helper()
	if _, err := os.Stat(etcdPath); err != nil {
		t.Fatalf("etcd is not installed at %s: run `make test`, which installs it (apt-get install etcd-server)", etcdPath)
	}
	c := &etcdCluster{t: t}
	var initial []string
	for i := range n {
		m := &etcdMember{
			name:   fmt.Sprintf("m%d", i),
			client: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			peer:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			dir:    filepath.Join(t.TempDir(), "etcd"),
		}
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	c.initial = strings.Join(initial, ",")
	for i := range c.members {
		c.run(i, "new")
	}
	for i := range c.members {
		c.waitHealthy(i)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			if m.cmd != nil {
				_ = m.cmd.Process.Kill()
				_ = m.cmd.Wait()
			}
		}
	})
	return c
}

// run starts member i's process.
func (c *etcdCluster) run(i int, state string) {
	c.t.Helper()
	m := c.members[i]
	m.cmd = exec.Command(etcdPath,
		"--name", m.name, "--data-dir", m.dir,
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", c.initial, "--initial-cluster-state", state,
		"--initial-cluster-token", "ghbroker-e2e",
		"--heartbeat-interval", "100", "--election-timeout", "1000",
		"--logger", "zap", "--log-level", "error")
	if err := m.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
}

// waitHealthy waits until member i answers /health with a leader.
func (c *etcdCluster) waitHealthy(i int) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(c.members[i].client + "/health")
		if err == nil {
			var h struct{ Health string }
			_ = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if h.Health == "true" {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("etcd member %s never became healthy", c.members[i].name)
}

// kill SIGKILLs member i.
func (c *etcdCluster) kill(i int) {
	c.t.Helper()
	m := c.members[i]
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	_ = m.cmd.Wait()
	m.cmd = nil
}

func (c *etcdCluster) endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.client)
	}
	return out
}

// raftIndex returns the highest raft index of the members that answer:
// how many entries (puts, transactions, lease grants and revocations…)
// the cluster has written.
func (c *etcdCluster) raftIndex() uint64 {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	defer cli.Close()
	var idx uint64
	for _, ep := range c.endpoints() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err == nil {
			idx = max(idx, st.RaftIndex)
		}
	}
	if idx == 0 {
		c.t.Fatal("no etcd member answered its status")
	}
	return idx
}
