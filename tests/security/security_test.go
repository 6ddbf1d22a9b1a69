// Package security is the security suite of the internal plane and the edges: every
// RPC of every service and every polaris admin API and console route is called without
// credentials, with the certificate of the wrong service and with a viewer token where it
// writes, and must be refused with its documented code; a full scenario's logs, metrics,
// answers and console pages must not hold the secrets it used; the defaults bind to
// loopback, keep pprof off and take secrets from files or the environment.
package security

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/pki"
	_ "github.com/athenaserving/asf/libs/proto/atom/v1" // registers the descriptors enumerated below
	_ "github.com/athenaserving/asf/libs/proto/lb/v1"
	_ "github.com/athenaserving/asf/libs/proto/loader/v1"
	_ "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/rs/zerolog"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
)

// protoPrefix is the package prefix of the suite's own gRPC services.
const protoPrefix = "asf."

// method is one RPC read from the generated descriptors.
type method struct {
	Service  string // full service name: asf.atom.v1.Atom
	Full     string // /asf.atom.v1.Atom/Call
	Desc     protoreflect.MethodDescriptor
	Streamed bool // client or server streaming
}

// methods enumerates every RPC of every asf.* service registered by the generated
// packages, so a new RPC is covered without touching this suite.
func methods(t *testing.T) []method {
	t.Helper()
	var out []method
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), protoPrefix) {
			return true
		}
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				md := sd.Methods().Get(j)
				out = append(out, method{Service: string(sd.FullName()), Full: "/" + string(sd.FullName()) + "/" + string(md.Name()),
					Desc: md, Streamed: md.IsStreamingClient() || md.IsStreamingServer()})
			}
		}
		return true
	})
	slices.SortFunc(out, func(a, b method) int { return strings.Compare(a.Full, b.Full) })
	if len(out) < 10 {
		t.Fatalf("only %d RPCs found in the descriptors", len(out))
	}
	return out
}

// serverOf is the address of the suite's server of a proto service.
func serverOf(t *testing.T, s *suitetest.Suite, service string) string {
	t.Helper()
	switch service {
	case "asf.atom.v1.Atom":
		return s.Atoms[0].GRPCAddr()
	case "asf.lb.v1.Lb":
		return s.LB.GRPCAddr()
	case "asf.loader.v1.Loader":
		return s.Loaders[0].GRPCAddr()
	case "asf.polaris.v1.Registry", "asf.polaris.v1.Config", "asf.polaris.v1.Resources":
		return s.Polaris.GRPCAddr()
	}
	t.Fatalf("no server of gRPC service %s in this suite: add it to serverOf", service)
	return ""
}

// dial opens a fresh connection (its own handshake) to addr.
func dial(t *testing.T, addr string, opt grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := grpcx.Dial(addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// invoke calls m with req (an empty message of its input type when nil) and returns
// the first error: for streams, after sending req and closing the send side, the first
// receive's. token, when set, goes in the authorization metadata.
func invoke(t *testing.T, cc *grpc.ClientConn, m method, req proto.Message, token string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	if req == nil {
		req = dynamicpb.NewMessage(m.Desc.Input())
	}
	resp := dynamicpb.NewMessage(m.Desc.Output())
	if !m.Streamed {
		return cc.Invoke(ctx, m.Full, req, resp)
	}
	st, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: m.Desc.IsStreamingClient(), ServerStreams: m.Desc.IsStreamingServer()}, m.Full)
	if err != nil {
		return err
	}
	if err := st.SendMsg(req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	_ = st.CloseSend()
	return st.RecvMsg(resp)
}

// grpcCode is the gRPC code of err.
func grpcCode(err error) codes.Code { return status.Code(err) }

// aseCode is the ASE code in a status error's details (0 when none).
func aseCode(err error) int {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == "asf" {
			n, _ := strconv.Atoi(info.GetMetadata()["code"])
			return n
		}
	}
	return 0
}

// wantRefused fails unless err is a status with code gc carrying ASE code ase.
func wantRefused(t *testing.T, what string, err error, gc codes.Code, ase int) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: answered, want %v/%d", what, gc, ase)
		return
	}
	if status.Code(err) != gc || aseCode(err) != ase {
		t.Errorf("%s: got %v/%d (%v), want %v/%d", what, status.Code(err), aseCode(err), err, gc, ase)
	}
}

// certOf is the dial option of a certificate of the suite's CA for identity id (issued
// into a temporary directory), verifying that the server is of service peer.
func certOf(t *testing.T, s *suitetest.Suite, id grpcx.Identity, peer string) grpc.DialOption {
	t.Helper()
	ca, err := pki.LoadCA(s.PKIDir())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := leaf.Write(dir, "leaf"); err != nil {
		t.Fatal(err)
	}
	b := tlsx.MustLoad(tlsx.Config{CA: filepath.Join(s.PKIDir(), pki.CACertFile), Cert: filepath.Join(dir, "leaf.crt"), Key: filepath.Join(dir, "leaf.key")}, zerolog.Nop())
	return tlsx.DialOption(b, peer)
}

// suiteCert is the dial option of the suite's own certificate of service svc.
func suiteCert(t *testing.T, s *suitetest.Suite, svc, peer string) grpc.DialOption {
	t.Helper()
	return tlsx.DialOption(tlsx.MustLoad(s.TLS(svc), zerolog.Nop()), peer)
}

// noClientCert is TLS that verifies nothing and presents no certificate.
func noClientCert() grpc.DialOption {
	return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})) //nolint:gosec // a caller without credentials
}

// foreignCA is a certificate with a valid-looking identity from a CA of its own.
func foreignCA(t *testing.T, svc string) grpc.DialOption {
	t.Helper()
	dir := t.TempDir()
	if err := pki.Ensure(dir, []pki.Want{{ID: grpcx.Identity{Service: svc, Instance: suitetest.PKIInstance}}}); err != nil {
		t.Fatal(err)
	}
	b := tlsx.MustLoad(tlsx.Config{CA: filepath.Join(dir, pki.CACertFile), Cert: filepath.Join(dir, svc+".crt"), Key: filepath.Join(dir, svc+".key")}, zerolog.Nop())
	return tlsx.DialOption(b, "")
}
