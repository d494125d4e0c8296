package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHSTSMaxAge: a year by default, 0s switches it off, negative is a
// mistake with its line.
func TestHSTSMaxAge(t *testing.T) {
	c, err := Parse("x.yaml", []byte(minimal), nil)
	if err != nil || c.Session.HSTSMaxAge.D() != 365*24*time.Hour {
		t.Fatalf("default hsts_max_age = %v, %v", c.Session.HSTSMaxAge, err)
	}
	c, err = Parse("x.yaml", []byte(minimal+"session:\n  hsts_max_age: 0s\n"), nil)
	if err != nil || c.Session.HSTSMaxAge.D() != 0 {
		t.Fatalf("hsts_max_age: 0s = %v, %v", c.Session.HSTSMaxAge, err)
	}
	if _, err := Parse("x.yaml", []byte(minimal+"session:\n  hsts_max_age: -1h\n"), nil); err == nil || !strings.Contains(err.Error(), "x.yaml:7:") {
		t.Errorf("negative hsts_max_age: %v", err)
	}
}

// TestSealKey: the key that seals GitHub tokens comes from the
// environment or a file, never the YAML itself, and must be 32 bytes.
func TestSealKey(t *testing.T) {
	hexKey := strings.Repeat("ab", 32)
	c, err := Parse("x.yaml", []byte(minimal), env(map[string]string{SealKeyEnvName: hexKey}))
	if err != nil || !bytes.Equal(c.Session.SealKey, bytes.Repeat([]byte{0xab}, 32)) {
		t.Fatalf("seal key from %s: %x, %v", SealKeyEnvName, c.Session.SealKey, err)
	}
	f := filepath.Join(t.TempDir(), "seal")
	if err := os.WriteFile(f, []byte("q83vq83vq83vq83vq83vq83vq83vq83vq83vq83vq80=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Parse("x.yaml", []byte(minimal+"session:\n  seal_key_file: "+f+"\n"), nil)
	if err != nil || len(c.Session.SealKey) != 32 {
		t.Fatalf("seal key from a base64 file: %x, %v", c.Session.SealKey, err)
	}
	if c, err := Parse("x.yaml", []byte(minimal), nil); err != nil || c.Session.SealKey != nil {
		t.Errorf("no seal key configured: %x, %v", c.Session.SealKey, err)
	}
	_, err = Parse("x.yaml", []byte(minimal+"session:\n  seal_key_env: SEAL\n"), env(map[string]string{"SEAL": "too-short"}))
	if err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Errorf("a short seal key: %v", err)
	}
	if _, err := Parse("x.yaml", []byte(minimal+"session:\n  seal_key: "+hexKey+"\n"), nil); err == nil || !strings.Contains(err.Error(), "x.yaml:7:") {
		t.Errorf("a seal key in the YAML itself: %v", err)
	}
}
