package natsbus

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// authServer is a NATS server that knows the users of a generated credentials directory,
// started either in process (WithUsers) or from the generated auth.conf, as an external
// nats-server would be.
type authServer struct {
	name  string
	start func(t *testing.T, dir string) (url string)
}

var authServers = []authServer{
	{"embedded", func(t *testing.T, dir string) string {
		users, err := LoadUsers(dir)
		if err != nil {
			t.Fatal(err)
		}
		emb, err := StartEmbedded("127.0.0.1:0", zerolog.Nop(), WithUsers("asf", users...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(emb.Shutdown)
		return emb.ClientURL()
	}},
	{"auth.conf", func(t *testing.T, dir string) string {
		conf := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(conf, []byte("host: 127.0.0.1\nport: -1\ninclude auth.conf\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		opts, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		opts.NoSigs, opts.NoLog = true, true
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go srv.Start()
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats-server from auth.conf not ready")
		}
		return srv.ClientURL()
	}},
}

func credDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nats")
	if _, err := GenerateCredentials(dir, "asf"); err != nil {
		t.Fatal(err)
	}
	return dir
}

// conn connects as service with its seed from dir; violations arrive on errs.
func conn(t *testing.T, url, dir, service string, errs chan<- error) *nats.Conn {
	t.Helper()
	opts, err := ClientConfig{NKeySeedFile: filepath.Join(dir, service+SeedExt)}.ClientOptions(false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("%s connect: %v", service, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func wantViolation(t *testing.T, errs <-chan error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("%s: want a permissions violation, got %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no permissions violation reported", what)
	}
}

func TestAuthNoCredentialsCannotConnect(t *testing.T) {
	for _, s := range authServers {
		t.Run(s.name, func(t *testing.T) {
			dir := credDir(t)
			url := s.start(t, dir)
			if nc, err := nats.Connect(url); err == nil {
				nc.Close()
				t.Fatal("a client without credentials connected")
			} else if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("want an authorization error, got %v", err)
			}
			// A key the server does not know is refused as well.
			k, err := NewKey(UserLBClient)
			if err != nil {
				t.Fatal(err)
			}
			o, err := KeyOption(k)
			if err != nil {
				t.Fatal(err)
			}
			if nc, err := nats.Connect(url, o); err == nil {
				nc.Close()
				t.Fatal("a client with an unknown key connected")
			}
		})
	}
}

func TestAuthPermissions(t *testing.T) {
	for _, s := range authServers {
		t.Run(s.name, func(t *testing.T) {
			dir := credDir(t)
			url := s.start(t, dir)
			lbErrs, polErrs := make(chan error, 4), make(chan error, 4)
			lb := conn(t, url, dir, UserLBClient, lbErrs)
			pol := conn(t, url, dir, UserPolaris, polErrs)

			loads, err := lb.SubscribeSync(LoadSubject("asf", ">"))
			if err != nil {
				t.Fatal(err)
			}
			if err := lb.Flush(); err != nil {
				t.Fatal(err)
			}
			// lbclient may not publish load reports.
			if err := lb.Publish(LoadSubject("asf", "echo"), []byte("forged")); err != nil {
				t.Fatal(err)
			}
			_ = lb.Flush()
			wantViolation(t, lbErrs, "lbclient publishing asf.load.echo")
			// polaris may.
			if err := pol.Publish(LoadSubject("asf", "echo"), []byte("real")); err != nil {
				t.Fatal(err)
			}
			if err := pol.Flush(); err != nil {
				t.Fatal(err)
			}
			m, err := loads.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Data) != "real" {
				t.Fatalf("lbclient received %q: a forged report got through", m.Data)
			}
			select {
			case err := <-polErrs:
				t.Fatalf("polaris publishing: %v", err)
			default:
			}

			// lbclient subscribes only to registry and load events.
			if _, err := lb.SubscribeSync(ConfigSubject("asf", ">")); err != nil {
				t.Fatal(err)
			}
			_ = lb.Flush()
			wantViolation(t, lbErrs, "lbclient subscribing asf.config.>")
			// polaris subscribes only to resource changes.
			if _, err := pol.SubscribeSync(ResourceSubject("asf", ">")); err != nil {
				t.Fatal(err)
			}
			if _, err := pol.SubscribeSync(LoadSubject("asf", ">")); err != nil {
				t.Fatal(err)
			}
			_ = pol.Flush()
			wantViolation(t, polErrs, "polaris subscribing asf.load.>")
			// Nobody may use request/reply inboxes.
			if err := pol.Publish("_INBOX.x", nil); err != nil {
				t.Fatal(err)
			}
			_ = pol.Flush()
			wantViolation(t, polErrs, "polaris publishing _INBOX.x")
		})
	}
}

func TestGenerateCredentialsKeepsKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	first, err := GenerateCredentials(dir, "asf")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(Users()) {
		t.Fatalf("users %v", first)
	}
	for _, svc := range Users() {
		st, err := os.Stat(filepath.Join(dir, svc+SeedExt))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s seed mode %v", svc, st.Mode())
		}
	}
	// A lost .pub is made again from the seed; a new prefix rewrites auth.conf only.
	if err := os.Remove(filepath.Join(dir, UserLBClient+PubExt)); err != nil {
		t.Fatal(err)
	}
	second, err := GenerateCredentials(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		if first[i] != second[i] {
			t.Fatalf("keys changed: %v then %v", first, second)
		}
	}
	conf, err := os.ReadFile(filepath.Join(dir, ServerConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), `"other.load.>"`) || strings.Contains(string(conf), `"asf.`) {
		t.Fatalf("auth.conf:\n%s", conf)
	}
}

func TestLoadUsersRejects(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadUsers(dir); err == nil {
		t.Fatal("an empty directory gave users")
	}
	k, err := NewKey("loader")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "loader.pub"), []byte(k.PublicKey), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadUsers(dir); err == nil {
		t.Fatal("a loader user was accepted: loaders publish nothing on NATS")
	}
	if err := os.WriteFile(filepath.Join(dir, "loader.pub"), []byte("# polaris\nnot-a-key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "loader.pub"), filepath.Join(dir, "polaris.pub")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadUsers(dir); err == nil {
		t.Fatal("a bad public key was accepted")
	}
}

func TestClientOptionsNeedCredentialsOrInsecure(t *testing.T) {
	if _, err := (ClientConfig{}).ClientOptions(false, zerolog.Nop()); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("want ErrNoCredentials, got %v", err)
	}
	if o, err := (ClientConfig{}).ClientOptions(true, zerolog.Nop()); err != nil || len(o) != 0 {
		t.Fatalf("insecure: %v %v", o, err)
	}
	if _, err := (ClientConfig{NKeySeedFile: filepath.Join(t.TempDir(), "missing.nk")}).ClientOptions(true, zerolog.Nop()); err == nil {
		t.Fatal("a missing seed file was accepted")
	}
	if _, err := (ClientConfig{NKeySeedFile: "a", Creds: "b"}).ClientOptions(false, zerolog.Nop()); err == nil {
		t.Fatal("both seed and creds were accepted")
	}
}
