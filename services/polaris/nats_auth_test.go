package polaris_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/natsbus"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/polaris"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// natsAs connects to url with service's seed from dir; asynchronous errors (permission
// violations) arrive on the returned channel.
func natsAs(t *testing.T, url, dir, service string) (*nats.Conn, <-chan error) {
	t.Helper()
	auth, err := natsbus.ClientConfig{NKeySeedFile: filepath.Join(dir, service+natsbus.SeedExt)}.ClientOptions(false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	nc, err := nats.Connect(url, append(auth, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))...)
	if err != nil {
		t.Fatalf("%s: %v", service, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// checkEventsAuthorized checks, on polaris's NATS, that a client without credentials is
// refused, that lbclient's user receives polaris's events and may not publish load.
func checkEventsAuthorized(t *testing.T, srv *polaris.Server, dir string) {
	t.Helper()
	if nc, err := nats.Connect(srv.NATSURL()); err == nil {
		nc.Close()
		t.Fatal("a client without credentials connected to polaris's NATS")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("want an authorization error, got %v", err)
	}
	lb, lbErrs := natsAs(t, srv.NATSURL(), dir, natsbus.UserLBClient)
	regs, err := lb.SubscribeSync(natsbus.RegistrySubject("asf", ">"))
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.Flush(); err != nil {
		t.Fatal(err)
	}
	rc := polarispb.NewRegistryClient(dial(t, srv.GRPCAddr()))
	inst := &polarispb.Instance{Service: "echo", Addr: "127.0.0.1:5090", Kind: "provider"}
	if _, err := rc.Register(t.Context(), &polarispb.RegisterRequest{Instance: inst, Load: &polarispb.Load{Total: 4, Live: 1}}); err != nil {
		t.Fatal(err)
	}
	subj, ev := recvRegistry(t, regs)
	if subj != "asf.registry.echo" || ev.GetType() != polarispb.RegistryEvent_TYPE_ADDED {
		t.Fatalf("lbclient got %s %v", subj, ev)
	}
	if err := lb.Publish(natsbus.LoadSubject("asf", "echo"), []byte("forged")); err != nil {
		t.Fatal(err)
	}
	_ = lb.Flush()
	select {
	case err := <-lbErrs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("lbclient publishing load: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("lbclient published a load report without a permissions violation")
	}
}

func TestEmbeddedNATSAuthorizesServices(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	if _, err := natsbus.GenerateCredentials(dir, "asf"); err != nil {
		t.Fatal(err)
	}
	srv := start(t, func(c *polaris.Config) { c.NATSUsers, c.TLS.Insecure = dir, false })
	checkEventsAuthorized(t, srv, dir)
}

func TestExternalNATSWithSeed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	users, err := natsbus.GenerateCredentials(dir, "asf")
	if err != nil {
		t.Fatal(err)
	}
	emb, err := natsbus.StartEmbedded("127.0.0.1:0", zerolog.Nop(), natsbus.WithUsers("asf", users...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	srv := start(t, func(c *polaris.Config) {
		c.NATSEmbedded, c.NATSURL, c.TLS.Insecure = false, emb.ClientURL(), false
		c.NATS.NKeySeedFile = filepath.Join(dir, natsbus.UserPolaris+natsbus.SeedExt)
	})
	checkEventsAuthorized(t, srv, dir)
}

func TestNATSWithoutCredentialsNeedsInsecure(t *testing.T) {
	cfg := polaris.DefaultConfig()
	cfg.DataDir = t.TempDir()
	if _, err := polaris.New(cfg, zerolog.Nop(), nil); aserr.CodeOf(err) != aserr.ErrInvalidParam.Code || !strings.Contains(err.Error(), "nats-users") {
		t.Fatalf("embedded NATS without nats-users: %v", err)
	}
	cfg.NATSEmbedded, cfg.NATSURL = false, "nats://127.0.0.1:4222"
	if _, err := polaris.New(cfg, zerolog.Nop(), nil); aserr.CodeOf(err) != aserr.ErrInvalidParam.Code || !strings.Contains(err.Error(), "nats-nkey-seed-file") {
		t.Fatalf("external NATS without credentials: %v", err)
	}
}
