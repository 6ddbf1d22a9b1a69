package tlsx_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/pki"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
)

// issue writes ca.crt and <name>.crt/.key for id into dir and returns its Config.
func issue(t *testing.T, ca *pki.CA, dir, name string, id grpcx.Identity) tlsx.Config {
	t.Helper()
	if err := ca.WriteCert(dir); err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Write(dir, name); err != nil {
		t.Fatal(err)
	}
	return tlsx.Config{CA: filepath.Join(dir, pki.CACertFile), Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
}

// serve runs grpc.health.v1 with b on 127.0.0.1:0 and records each caller's identity.
func serve(t *testing.T, b *tlsx.Bundle) (string, chan grpcx.Identity) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ids := make(chan grpcx.Identity, 100)
	s := grpc.NewServer(tlsx.ServerOption(b), grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if id, ok := grpcx.IdentityFromContext(ctx); ok {
			ids <- id
		}
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(s, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return ln.Addr().String(), ids
}

func check(ctx context.Context, addr string, opt grpc.DialOption) (*x509Peer, error) {
	cc, err := grpcx.Dial(addr, opt)
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	var p peer.Peer
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		return nil, err
	}
	ti := p.AuthInfo.(credentials.TLSInfo)
	return &x509Peer{serial: ti.State.PeerCertificates[0].SerialNumber.String()}, nil
}

type x509Peer struct{ serial string }

func TestMutualTLSIdentityAndRefusals(t *testing.T) {
	log := zerolog.Nop()
	ca, err := pki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv := tlsx.MustLoad(issue(t, ca, dir, "atom", grpcx.Identity{Service: "atom", Instance: "a0"}), log)
	cli := tlsx.MustLoad(issue(t, ca, dir, "webgate", grpcx.Identity{Service: "webgate", Instance: "w0"}), log)
	addr, ids := serve(t, srv)

	if _, err := check(t.Context(), addr, tlsx.DialOption(cli, "atom")); err != nil {
		t.Fatalf("mTLS call: %v", err)
	}
	if id := <-ids; id != (grpcx.Identity{Service: "webgate", Instance: "w0"}) {
		t.Fatalf("server saw caller %v", id)
	}
	// A client expecting another service refuses the server.
	if _, err := check(t.Context(), addr, tlsx.DialOption(cli, "loader")); err == nil {
		t.Fatal("client accepted an atom as a loader")
	}
	// Plaintext callers are refused.
	if _, err := check(t.Context(), addr, tlsx.DialOption(nil, "")); err == nil {
		t.Fatal("plaintext call accepted")
	}
	// A certificate from another CA is refused.
	other, _ := pki.NewCA("other CA")
	odir := t.TempDir()
	stranger := tlsx.MustLoad(issue(t, other, odir, "webgate", grpcx.Identity{Service: "webgate", Instance: "x"}), log)
	if _, err := check(t.Context(), addr, tlsx.DialOption(stranger, "")); err == nil {
		t.Fatal("certificate of a foreign CA accepted")
	}
}

func TestReloadRotatesCAAndLeaves(t *testing.T) {
	log := zerolog.Nop()
	oldCA, _ := pki.NewCA("old")
	newCA, _ := pki.NewCA("new")
	sdir, cdir := t.TempDir(), t.TempDir()
	scfg := issue(t, oldCA, sdir, "atom", grpcx.Identity{Service: "atom", Instance: "a0"})
	ccfg := issue(t, oldCA, cdir, "webgate", grpcx.Identity{Service: "webgate", Instance: "w0"})
	srv, cli := tlsx.MustLoad(scfg, log), tlsx.MustLoad(ccfg, log)
	addr, _ := serve(t, srv)
	first, err := check(t.Context(), addr, tlsx.DialOption(cli, "atom"))
	if err != nil {
		t.Fatal(err)
	}
	// Step 1: both trust old+new.
	bundle := append(append([]byte{}, oldCA.CertPEM...), newCA.CertPEM...)
	for _, d := range []string{sdir, cdir} {
		if err := os.WriteFile(filepath.Join(d, pki.CACertFile), bundle, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Step 2: the server gets a leaf of the new CA; the client still has the old one.
	leaf, _ := newCA.Issue(grpcx.Identity{Service: "atom", Instance: "a0"})
	if err := leaf.Write(sdir, "atom"); err != nil {
		t.Fatal(err)
	}
	got, err := check(t.Context(), addr, tlsx.DialOption(cli, "atom"))
	if err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if got.serial == first.serial || got.serial != leaf.Cert.SerialNumber.String() {
		t.Fatalf("new connection got serial %s, want the new %s", got.serial, leaf.Cert.SerialNumber)
	}
	if srv.Leaf().SerialNumber.Cmp(leaf.Cert.SerialNumber) != 0 {
		t.Fatal("bundle did not reload the leaf")
	}
	// Broken files keep the loaded material.
	if err := os.WriteFile(scfg.Cert, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := check(t.Context(), addr, tlsx.DialOption(cli, "atom")); err != nil {
		t.Fatalf("broken file broke the server: %v", err)
	}
}

func TestCheck(t *testing.T) {
	if err := (tlsx.Config{}).Check(); !errors.Is(err, tlsx.ErrNotConfigured) {
		t.Fatalf("empty config: %v", err)
	}
	if err := (tlsx.Config{Insecure: true}).Check(); err != nil {
		t.Fatal(err)
	}
	if err := (tlsx.Config{CA: "a", Insecure: true}).Check(); err == nil {
		t.Fatal("partial files accepted")
	}
	if err := (tlsx.Config{CA: "a", Cert: "b", Key: "c", Insecure: true}).Check(); err != nil {
		t.Fatal(err)
	}
	if b, err := tlsx.Load(tlsx.Config{Insecure: true}, zerolog.Nop()); b != nil || err != nil {
		t.Fatalf("insecure Load = %v, %v", b, err)
	}
	if _, err := tlsx.Load(tlsx.Config{CA: "/nonexistent", Cert: "/x", Key: "/y"}, zerolog.Nop()); err == nil {
		t.Fatal("missing files accepted")
	}
}
