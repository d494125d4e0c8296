package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestEtcdStorage(t *testing.T) {
	src := minimal + `storage:
  etcd:
    endpoints: [https://etcd-0.etcd:2379, https://etcd-1.etcd:2379]
    username: ghbroker
    password_env: ETCD_PASSWORD
`
	c, err := Parse("etcd.yaml", []byte(src), env(map[string]string{"ETCD_PASSWORD": "pw"}))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Storage.Etcd
	if e == nil {
		t.Fatal("storage.etcd not decoded")
	}
	if e.Prefix != DefaultEtcdPrefix || e.DialTimeout.D() != 5*time.Second || e.RequestTimeout.D() != 3*time.Second {
		t.Errorf("defaults: prefix %q dial %s request %s", e.Prefix, e.DialTimeout.D(), e.RequestTimeout.D())
	}
	if e.Password != "pw" || len(e.Endpoints) != 2 {
		t.Errorf("password %q, endpoints %v", e.Password, e.Endpoints)
	}
	if c.Storage.Bolt.Path != "" {
		t.Errorf("bolt path %q defaulted although etcd is chosen", c.Storage.Bolt.Path)
	}
}

func TestBadStorage(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		want      string
	}{
		{"both engines", "storage:\n  bolt: {path: /x.db}\n  etcd: {endpoints: [http://127.0.0.1:2379]}\n", 8, "set exactly one of storage.bolt"},
		{"no endpoints", "storage:\n  etcd: {prefix: /x/}\n", 7, "storage.etcd.endpoints must list"},
		{"bad endpoint", "storage:\n  etcd:\n    endpoints: [etcd-0:2379]\n", 8, "must be an http or https URL"},
		{"endpoint with path", "storage:\n  etcd:\n    endpoints: [http://etcd-0:2379/v3]\n", 8, "scheme://host:port only"},
		{"bad prefix", "storage:\n  etcd:\n    endpoints: [http://e:2379]\n    prefix: ghbroker\n", 9, "must start and end with /"},
		{"http with tls", "storage:\n  etcd:\n    endpoints: [http://e:2379]\n    tls: {ca_file: /nonexistent/ca.pem}\n", 8, "is plain http, but storage.etcd.tls is set"},
		{"missing ca", "storage:\n  etcd:\n    endpoints: [https://e:2379]\n    tls: {ca_file: /nonexistent/ca.pem}\n", 9, "cannot read ca_file /nonexistent/ca.pem"},
		{"cert without key", "storage:\n  etcd:\n    endpoints: [https://e:2379]\n    tls: {cert_file: /x.pem}\n", 9, "cert_file and key_file go together"},
		{"password env unset", "storage:\n  etcd:\n    endpoints: [https://e:2379]\n    username: u\n    password_env: NOPE\n", 10, "environment variable NOPE is not set"},
		{"username without password", "storage:\n  etcd:\n    endpoints: [https://e:2379]\n    username: u\n", 9, "no password"},
		{"two passwords", "storage:\n  etcd:\n    endpoints: [https://e:2379]\n    username: u\n    password: p\n    password_file: /x\n", 7, "more than one place"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(minimal+tt.src), nil)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg, tt.want)
			}
			if prefix := "bad.yaml:" + strconv.Itoa(tt.line) + ": "; !strings.Contains(msg, prefix) {
				t.Errorf("error %q does not point at %q", msg, prefix)
			}
		})
	}
}

// TestEtcdTLSReloadsClientCertificate: a renewed client certificate on
// disk is used at the next handshake, without a restart.
func TestEtcdTLSReloadsClientCertificate(t *testing.T) {
	dir := t.TempDir()
	write := func(cn string) {
		t.Helper()
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		kd, _ := x509.MarshalPKCS8PrivateKey(key)
		os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
		os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	}
	write("first")
	c, err := EtcdTLS{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}.Config()
	if err != nil {
		t.Fatal(err)
	}
	cn := func() string {
		t.Helper()
		cert, err := c.GetClientCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if got := cn(); got != "first" {
		t.Fatalf("client certificate %q, want first", got)
	}
	write("renewed")
	if got := cn(); got != "renewed" {
		t.Errorf("after renewal the client certificate is %q, want renewed", got)
	}
	os.WriteFile(filepath.Join(dir, "tls.key"), []byte("half-written"), 0o600)
	if got := cn(); got != "renewed" {
		t.Errorf("with the files mid-update the client certificate is %q, want the last good one", got)
	}
}
