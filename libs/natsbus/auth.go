package natsbus

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"
)

// The services that hold a NATS user. Every other service (atom, webgate, loader) talks
// to polaris over gRPC only and has no NATS user, so it cannot connect at all.
const (
	// UserPolaris publishes every control-plane event and relays resource changes
	// between polaris replicas.
	UserPolaris = "polaris"
	// UserLBClient only subscribes to the registry and load events.
	UserLBClient = "lbclient"
)

// Files in a credentials directory (see GenerateCredentials).
const (
	// SeedExt ends a service's nkey seed file: <dir>/<service>.nk (mode 0600).
	SeedExt = ".nk"
	// PubExt ends a service's public key file: <dir>/<service>.pub.
	PubExt = ".pub"
	// ServerConfigFile is the nats-server authorization block generated beside them,
	// for an external NATS server (include it from the server's config).
	ServerConfigFile = "auth.conf"
)

// Permission is what one NATS user may publish and subscribe to. A nil Publish or
// Subscribe list allows nothing.
type Permission struct {
	Publish   []string
	Subscribe []string
}

// Permissions returns the subject permissions of service's NATS user under prefix, and
// false when service has no NATS user.
//
//	polaris   publish   <p>.registry.> <p>.load.> <p>.config.> <p>.resource.>
//	          subscribe <p>.resource.>   (resource changes of the other replicas)
//	lbclient  publish   nothing
//	          subscribe <p>.registry.> <p>.load.>
//
// No request/reply runs on NATS, so no user may use _INBOX.>.
func Permissions(service, prefix string) (Permission, bool) {
	switch service {
	case UserPolaris:
		return Permission{
			Publish: []string{RegistrySubject(prefix, ">"), LoadSubject(prefix, ">"),
				ConfigSubject(prefix, ">"), ResourceSubject(prefix, ">")},
			Subscribe: []string{ResourceSubject(prefix, ">")},
		}, true
	case UserLBClient:
		return Permission{Subscribe: []string{RegistrySubject(prefix, ">"), LoadSubject(prefix, ">")}}, true
	}
	return Permission{}, false
}

// Users lists the services that hold a NATS user.
func Users() []string { return []string{UserPolaris, UserLBClient} }

// User is one NATS user: the service it belongs to and its nkey public key.
type User struct {
	Service   string
	PublicKey string
}

func (u User) validate() error {
	if _, ok := Permissions(u.Service, "asf"); !ok {
		return fmt.Errorf("nats user %q: no such service (want one of %s)", u.Service, strings.Join(Users(), ", "))
	}
	if !nkeys.IsValidPublicUserKey(u.PublicKey) {
		return fmt.Errorf("nats user %q: %q is not an nkey user public key", u.Service, u.PublicKey)
	}
	return nil
}

// serverUsers turns users into the server's nkey users with their permissions.
func serverUsers(users []User, prefix string) ([]*server.NkeyUser, error) {
	out := make([]*server.NkeyUser, 0, len(users))
	for _, u := range users {
		if err := u.validate(); err != nil {
			return nil, err
		}
		p, _ := Permissions(u.Service, prefix)
		out = append(out, &server.NkeyUser{Nkey: u.PublicKey, Permissions: &server.Permissions{
			Publish:   subjectPermission(p.Publish),
			Subscribe: subjectPermission(p.Subscribe),
		}})
	}
	return out, nil
}

func subjectPermission(allow []string) *server.SubjectPermission {
	if len(allow) == 0 {
		return &server.SubjectPermission{Deny: []string{">"}}
	}
	return &server.SubjectPermission{Allow: append([]string(nil), allow...)}
}

// Key is one service's generated NATS identity. Seed is secret.
type Key struct {
	User
	Seed []byte
}

// NewKey makes a fresh nkey user key for service.
func NewKey(service string) (Key, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return Key{}, fmt.Errorf("nkey for %s: %w", service, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return Key{}, fmt.Errorf("nkey for %s: %w", service, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return Key{}, fmt.Errorf("nkey for %s: %w", service, err)
	}
	return Key{User: User{Service: service, PublicKey: pub}, Seed: seed}, nil
}

// GenerateCredentials makes dir (0700) and, for every service that holds a NATS user,
// the seed <dir>/<service>.nk (0600) and the public key <dir>/<service>.pub, keeping the
// ones that exist; then it writes <dir>/auth.conf, the nats-server authorization of
// every <service>.pub in dir under prefix. It returns the users. Calling it again
// changes nothing but auth.conf (for a new prefix).
func GenerateCredentials(dir, prefix string) ([]User, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	for _, svc := range Users() {
		seedPath := filepath.Join(dir, svc+SeedExt)
		if _, err := os.Stat(seedPath); err == nil {
			if err := writePub(dir, svc, seedPath); err != nil {
				return nil, err
			}
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("nats credentials: %w", err)
		}
		k, err := NewKey(svc)
		if err != nil {
			return nil, err
		}
		if err := writeFile(seedPath, append(k.Seed, '\n'), 0o600); err != nil {
			return nil, err
		}
		if err := writeFile(filepath.Join(dir, svc+PubExt), []byte(k.PublicKey+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	users, err := LoadUsers(dir)
	if err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, ServerConfigFile), []byte(ServerConfig(users, prefix)), 0o644); err != nil {
		return nil, err
	}
	return users, nil
}

// writePub (re)writes <dir>/<svc>.pub from the seed when it is missing.
func writePub(dir, svc, seedPath string) error {
	pubPath := filepath.Join(dir, svc+PubExt)
	if _, err := os.Stat(pubPath); err == nil {
		return nil
	}
	seed, err := os.ReadFile(seedPath)
	if err != nil {
		return fmt.Errorf("nats credentials: %w", err)
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
	if err != nil {
		return fmt.Errorf("nats credentials: %s: %w", seedPath, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return fmt.Errorf("nats credentials: %s: %w", seedPath, err)
	}
	return writeFile(pubPath, []byte(pub+"\n"), 0o644)
}

// writeFile writes data to path through a temporary file and a rename, so readers
// never see half a key.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("nats credentials: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // umask may have narrowed it
		_ = os.Remove(tmp)
		return fmt.Errorf("nats credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("nats credentials: %w", err)
	}
	return nil
}

// LoadUsers reads the public keys <dir>/<service>.pub (one nkey each; blank lines and
// # comments ignored). Other files in dir are ignored; a .pub file of a service without
// a NATS user is an error.
func LoadUsers(dir string) ([]User, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("nats users: %w", err)
	}
	var users []User
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, PubExt) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("nats users: %w", err)
		}
		u := User{Service: strings.TrimSuffix(name, PubExt), PublicKey: firstLine(string(b))}
		if err := u.validate(); err != nil {
			return nil, fmt.Errorf("nats users: %s: %w", filepath.Join(dir, name), err)
		}
		users = append(users, u)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("nats users: no <service>%s file in %s", PubExt, dir)
	}
	sort.Slice(users, func(i, j int) bool { return users[i].Service < users[j].Service })
	return users, nil
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return ""
}

// ServerConfig is the nats-server configuration block that authorizes users under
// prefix with their permissions, for an external NATS server:
//
//	nats-server -c nats.conf   # nats.conf: port: 4222 ... include auth.conf
func ServerConfig(users []User, prefix string) string {
	var b strings.Builder
	b.WriteString("# Athena Serving NATS users (nkeys) and their subject permissions, subject prefix " + strconv.Quote(prefix) + ".\n")
	b.WriteString("# Generated from the <service>.pub files; a client without one of these keys cannot connect.\n")
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range users {
		p, ok := Permissions(u.Service, prefix)
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "    # %s\n    {nkey: %q, permissions: {publish: %s, subscribe: %s}}\n",
			u.Service, u.PublicKey, confPermission(p.Publish), confPermission(p.Subscribe))
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

func confPermission(allow []string) string {
	if len(allow) == 0 {
		return `{deny: [">"]}`
	}
	q := make([]string, len(allow))
	for i, s := range allow {
		q[i] = strconv.Quote(s)
	}
	return "{allow: [" + strings.Join(q, ", ") + "]}"
}

// ClientConfig is how a service authenticates to NATS; every service that connects to
// NATS embeds it, so the keys read the same everywhere (YAML nats-nkey-seed-file, env
// ASF_<SVC>_NATS_NKEY_SEED_FILE). Both hold paths, never the secret itself, so no
// secret shows on a command line.
type ClientConfig struct {
	// NKeySeedFile is the service's nkey seed file (<service>.nk of GenerateCredentials).
	NKeySeedFile string `cfg:"nats-nkey-seed-file" help:"file holding this service's NATS nkey seed (made by the credentials generator; the server knows its public key)"`
	// Creds is a NATS .creds file (user JWT and seed), for an external NATS in operator mode.
	Creds string `cfg:"nats-creds" help:"NATS .creds file (user JWT and nkey seed) for an external NATS server in operator mode; instead of nats-nkey-seed-file"`
}

// Configured tells whether any credentials are set.
func (c ClientConfig) Configured() bool { return c.NKeySeedFile != "" || c.Creds != "" }

// ErrNoCredentials is returned by ClientOptions when no credentials are configured and
// insecure was not asked for.
var ErrNoCredentials = errors.New("no NATS credentials (nats-nkey-seed-file or nats-creds) and insecure is off")

// ClientOptions returns the nats options that authenticate as c says. With no
// credentials it returns ErrNoCredentials unless insecure is set, in which case it logs
// a warning and returns no option.
func (c ClientConfig) ClientOptions(insecure bool, log zerolog.Logger) ([]nats.Option, error) {
	switch {
	case c.NKeySeedFile != "" && c.Creds != "":
		return nil, errors.New("nats-nkey-seed-file and nats-creds are both set; choose one")
	case c.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats-nkey-seed-file %s: %w", c.NKeySeedFile, err)
		}
		return []nats.Option{o}, nil
	case c.Creds != "":
		if _, err := os.Stat(c.Creds); err != nil {
			return nil, fmt.Errorf("nats-creds: %w", err)
		}
		return []nats.Option{nats.UserCredentials(c.Creds)}, nil
	case insecure:
		log.Warn().Msg("insecure: connecting to NATS without credentials")
		return nil, nil
	}
	return nil, ErrNoCredentials
}

// KeyOption authenticates a connection with k held in memory (an identity that never
// leaves the process, such as polaris's user on its own embedded server).
func KeyOption(k Key) (nats.Option, error) {
	kp, err := nkeys.FromSeed(k.Seed)
	if err != nil {
		return nil, fmt.Errorf("nkey %s: %w", k.Service, err)
	}
	return nats.Nkey(k.PublicKey, kp.Sign), nil
}
