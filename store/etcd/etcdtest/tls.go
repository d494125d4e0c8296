package etcdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSFiles names the PEM files of one side of a TLS connection, laid out
// as cert-manager's Secrets are (ca.crt, tls.crt, tls.key).
type TLSFiles struct {
	CA, Cert, Key string
}

// WriteCerts writes a CA, a server certificate for 127.0.0.1 and
// localhost, and a client certificate (for mTLS), each pair with the CA,
// into subdirectories server/ and client/ of dir.
func WriteCerts(dir string) (server, client TLSFiles, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return server, client, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "etcdtest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return server, client, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (TLSFiles, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return TLSFiles{}, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return TLSFiles{}, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return TLSFiles{}, err
		}
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return TLSFiles{}, err
		}
		f := TLSFiles{CA: filepath.Join(d, "ca.crt"), Cert: filepath.Join(d, "tls.crt"), Key: filepath.Join(d, "tls.key")}
		for p, data := range map[string][]byte{
			f.CA: caPEM, f.Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			f.Key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		} {
			if err := os.WriteFile(p, data, 0o600); err != nil {
				return TLSFiles{}, err
			}
		}
		return f, nil
	}
	if server, err = leaf("server", 2, x509.ExtKeyUsageServerAuth); err != nil {
		return server, client, fmt.Errorf("etcdtest: %w", err)
	}
	if client, err = leaf("client", 3, x509.ExtKeyUsageClientAuth); err != nil {
		return server, client, fmt.Errorf("etcdtest: %w", err)
	}
	return server, client, nil
}
