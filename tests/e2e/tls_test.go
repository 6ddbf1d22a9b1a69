package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/pki"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
)

func atomFrame() *atompb.Frame {
	return &atompb.Frame{Capability: "echo", Sid: "tls-1", Status: 3, Header: map[string]string{"uid": "u1"},
		Payload: []*atompb.Item{{Name: "input", DataType: "text", Data: []byte("x")}}}
}

// callAtom calls Atom.Call on a fresh connection with opt.
func callAtom(t *testing.T, addr string, opt grpc.DialOption) error {
	t.Helper()
	cc, err := grpcx.Dial(addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = atompb.NewAtomClient(cc).Call(ctx, atomFrame())
	return err
}

// peerCert dials addr on a fresh connection with opt and returns the server's certificate.
func peerCert(t *testing.T, addr string, opt grpc.DialOption) *x509.Certificate {
	t.Helper()
	cc, err := grpcx.Dial(addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var p peer.Peer
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		t.Fatalf("health of %s: %v", addr, err)
	}
	return p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0]
}

// TestAtomRefusesCallersWithoutCertificate: atom's gRPC port no longer takes Atom.Call
// from anyone — only from holders of a certificate of the suite's CA.
func TestAtomRefusesCallersWithoutCertificate(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1})
	addr := s.Atoms[0].GRPCAddr()
	if err := callAtom(t, addr, tlsx.DialOption(nil, "")); err == nil {
		t.Fatal("atom answered a plaintext caller")
	}
	dir := t.TempDir() // a CA of its own: foreign to the suite
	if err := pki.Ensure(dir, []pki.Want{{ID: grpcx.Identity{Service: "webgate", Instance: "127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	stranger := tlsx.MustLoad(tlsx.Config{CA: filepath.Join(dir, pki.CACertFile), Cert: filepath.Join(dir, "webgate.crt"), Key: filepath.Join(dir, "webgate.key")}, zerolog.Nop())
	if err := callAtom(t, addr, tlsx.DialOption(stranger, "")); err == nil {
		t.Fatal("atom answered a certificate of a foreign CA")
	}
	if err := callAtom(t, addr, s.DialOption("atom")); err != nil {
		t.Fatalf("certified caller: %v", err)
	}
	// And through the edge, as clients go.
	mustOK(t, once(t, s.Client(), "over mTLS"), "once")
}

// TestInsecureSuite keeps the plaintext path (insecure) working end to end.
func TestInsecureSuite(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, Insecure: true})
	mustOK(t, once(t, s.Client(), "plaintext"), "once")
	if err := callAtom(t, s.Atoms[0].GRPCAddr(), tlsx.DialOption(nil, "")); err != nil {
		t.Fatalf("insecure atom refused a plaintext caller: %v", err)
	}
}

// TestCertificateRotationUnderLoad rotates the CA and every certificate on disk while
// once requests run through the suite: (1) the CA bundle gains the new CA, (2) every
// service gets a leaf of the new CA, (3) the bundle drops the old CA. No request fails,
// and new connections present the new certificates.
func TestCertificateRotationUnderLoad(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2})
	dir := s.PKIDir()
	oldCA, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	newCA, err := pki.NewCA("asf internal CA (next)")
	if err != nil {
		t.Fatal(err)
	}

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	c := s.Client()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := c.Once(context.Background(), "echo", onceFrame("rotating"))
				if err != nil || r.Header.Code != 0 {
					if failed.Add(1) == 1 {
						if err == nil {
							firstErr.Store(string(r.Raw))
						} else {
							firstErr.Store(err.Error())
						}
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopLoad()
	progress := func() {
		t.Helper()
		n := ok.Load()
		suitetest.WaitFor(t, 10*time.Second, func() bool { return ok.Load() >= n+50 })
	}
	progress()

	writeCA := func(pems ...[]byte) {
		t.Helper()
		var b []byte
		for _, p := range pems {
			b = append(b, p...)
		}
		tmp := filepath.Join(dir, ".ca.crt.tmp")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, pki.CACertFile)); err != nil {
			t.Fatal(err)
		}
	}
	// (1) trust both.
	writeCA(oldCA.CertPEM, newCA.CertPEM)
	progress()
	// (2) new leaves for everyone.
	for _, w := range suitetest.PKIWants() {
		leaf, err := newCA.Issue(w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := leaf.Write(dir, w.ID.Service); err != nil {
			t.Fatal(err)
		}
	}
	progress()
	// New connections to every gRPC server present a leaf of the new CA.
	servers := map[string]string{"polaris": s.Polaris.GRPCAddr(), "lbclient": s.LB.GRPCAddr(), "atom": s.Atoms[0].GRPCAddr()}
	for i, l := range s.Loaders {
		servers[fmt.Sprintf("loader-%d", i)] = l.GRPCAddr()
	}
	for name, addr := range servers {
		cert := peerCert(t, addr, s.DialOption(""))
		if err := cert.CheckSignatureFrom(newCA.Cert); err != nil {
			t.Fatalf("%s presents a certificate not of the new CA: %v", name, err)
		}
	}
	// (3) drop the old CA; a loader started now is reached over new connections only.
	writeCA(newCA.CertPEM)
	progress()
	s.AddLoader()
	suitetest.WaitFor(t, 10*time.Second, func() bool { return s.LB.Live("echo") == 3 })
	progress()
	stopLoad()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the rotation; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	t.Logf("%d once requests through the rotation, none failed", ok.Load())
	// A holder of only an old-CA certificate is now refused.
	odir := t.TempDir()
	leaf, err := oldCA.Issue(grpcx.Identity{Service: "webgate", Instance: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Write(odir, "webgate"); err != nil {
		t.Fatal(err)
	}
	if err := oldCA.WriteCert(odir); err != nil {
		t.Fatal(err)
	}
	stale := tlsx.MustLoad(tlsx.Config{CA: filepath.Join(odir, pki.CACertFile), Cert: filepath.Join(odir, "webgate.crt"), Key: filepath.Join(odir, "webgate.key")}, zerolog.Nop())
	if err := callAtom(t, s.Atoms[0].GRPCAddr(), tlsx.DialOption(stale, "atom")); err == nil {
		t.Fatal("atom answered a certificate of the retired CA")
	}
}
