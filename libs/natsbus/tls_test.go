package natsbus

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/pki"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

func bundle(t *testing.T, dir, service string) *tlsx.Bundle {
	t.Helper()
	if err := pki.Ensure(dir, []pki.Want{{ID: grpcx.Identity{Service: service, Instance: service + "-0"}}}); err != nil {
		t.Fatal(err)
	}
	b, err := tlsx.Load(tlsx.Config{CA: filepath.Join(dir, pki.CACertFile), Cert: filepath.Join(dir, service+".crt"), Key: filepath.Join(dir, service+".key")}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTLSWithCredentials(t *testing.T) {
	pkiDir, credDir := t.TempDir(), filepath.Join(t.TempDir(), "nats")
	users, err := GenerateCredentials(credDir, "asf")
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, lbTLS := bundle(t, pkiDir, UserPolaris), bundle(t, pkiDir, UserLBClient)
	emb, err := StartEmbedded("127.0.0.1:0", zerolog.Nop(), WithUsers("asf", users...), WithTLS(srvTLS))
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	seed, err := ClientConfig{NKeySeedFile: filepath.Join(credDir, UserLBClient+SeedExt)}.ClientOptions(false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}

	// Credentials and a certificate of the internal CA: connected over TLS.
	nc, err := nats.Connect(emb.ClientURL(), append(seed, TLSOption(lbTLS)...)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.TLSConnectionState(); err != nil {
		t.Fatalf("not TLS: %v", err)
	}
	nc.Close()

	// Credentials without TLS: refused.
	if nc, err := nats.Connect(emb.ClientURL(), seed...); err == nil {
		nc.Close()
		t.Fatal("a plaintext client connected to a TLS server")
	}
	// TLS from another CA: refused.
	other := bundle(t, t.TempDir(), UserLBClient)
	if nc, err := nats.Connect(emb.ClientURL(), append(seed, TLSOption(other)...)...); err == nil {
		nc.Close()
		t.Fatal("a client of another CA connected")
	}
	// A server presenting a certificate of another service is not trusted as NATS.
	fake, err := StartEmbedded("127.0.0.1:0", zerolog.Nop(), WithUsers("asf", users...), WithTLS(bundle(t, pkiDir, "loader")))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Shutdown()
	if nc, err := nats.Connect(fake.ClientURL(), append(seed, TLSOption(lbTLS)...)...); err == nil {
		nc.Close()
		t.Fatal("lbclient trusted a NATS server with a loader's certificate")
	} else if errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("want a TLS refusal, got %v", err)
	}
}
