package pki_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/pki"
)

func TestEnsureGeneratesOnceAndReuses(t *testing.T) {
	dir := t.TempDir()
	wants := []pki.Want{
		{ID: grpcx.Identity{Service: "atom", Instance: "atom-0"}, Names: []string{"atom", "10.1.2.3"}},
		{File: "loader-echo", ID: grpcx.Identity{Service: "loader", Instance: "echo-0"}},
	}
	if err := pki.Ensure(dir, wants); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "atom.crt"))
	if err := pki.Ensure(dir, wants); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "atom.crt"))
	if string(before) != string(after) {
		t.Fatal("second Ensure replaced an existing certificate")
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "atom.crt"), filepath.Join(dir, "atom.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	id, err := grpcx.IdentityOfCert(leaf)
	if err != nil || id != wants[0].ID {
		t.Fatalf("identity %v, %v", id, err)
	}
	if err := leaf.VerifyHostname("atom"); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "10.1.2.3"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "loader-echo.key")); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(dir, pki.CAKeyFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key mode %v", st.Mode())
	}
}
