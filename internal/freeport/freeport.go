// Package freeport finds free loopback TCP ports, for servers that must be
// told their ports before they bind them (an embedded etcd's client and
// peer URLs).
package freeport

import (
	"fmt"
	"net"
)

// Loopback returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago. Another process may take one before the caller binds it:
// callers retry on a bind failure.
func Loopback(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
