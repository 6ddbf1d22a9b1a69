// Command asfsecrets makes the secrets of the docker-compose deployment on its first start
// and hands each service only what it needs: the one-shot `secrets` service runs it before
// everything else.
//
//	asfsecrets init [--dir /secrets] [--deliver /deliver] [--days 365]
//	asfsecrets show [--dir /secrets] [client.env|admin-token|apps.json|ca.crt]
//
// init makes in --dir what is missing and keeps what exists, so later starts reuse the
// first one's material (delete a file to make it anew):
//
//	pki/         the internal plane's CA (ca.crt, ca.key) and a tier certificate per service
//	             (<service>.crt/.key, URI SAN spiffe://asf/<service>/*, DNS SAN the service
//	             name) for polaris, lbclient, loader, atom, webgate and asfctl (libs/pki)
//	nats/        nkey seeds (<service>.nk) of polaris and lbclient and auth.conf, the nats
//	             server's users and subject permissions (libs/natsbus)
//	admin-token  the polaris admin token
//	apps.json    the webgate apps: one app with a random api_key and api_secret
//	client.env   the same app as ASF_APP_ID, ASF_API_KEY, ASF_API_SECRET for clients
//
// Then it copies, into every directory --deliver/<consumer> that exists (each a volume of
// its own), the files that consumer reads (see deliveries); the CA key never leaves --dir.
// show prints one file of --dir, by default client.env.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/athenaserving/asf/libs/natsbus"
	"github.com/athenaserving/asf/libs/pki"
)

// Names of the files init makes at the top of --dir.
const (
	adminTokenFile = "admin-token"
	appsFile       = "apps.json"
	clientEnvFile  = "client.env"
)

// certServices are the services with a certificate: the five services and asfctl, the
// identity of the init job and the tools.
var certServices = pki.Services

// deliveries lists, per consumer, the files of --dir it receives (by base name). Every
// consumer gets only its own key; none gets the CA key.
var deliveries = map[string][]string{
	"nats":     {"nats/" + natsbus.ServerConfigFile},
	"polaris":  {"pki/ca.crt", "pki/polaris.crt", "pki/polaris.key", "nats/polaris" + natsbus.SeedExt, adminTokenFile},
	"lbclient": {"pki/ca.crt", "pki/lbclient.crt", "pki/lbclient.key", "nats/lbclient" + natsbus.SeedExt},
	"atom":     {"pki/ca.crt", "pki/atom.crt", "pki/atom.key"},
	"webgate":  {"pki/ca.crt", "pki/webgate.crt", "pki/webgate.key"},
	"loader":   {"pki/ca.crt", "pki/loader.crt", "pki/loader.key"},
	"init":     {"pki/ca.crt", "pki/asfctl.crt", "pki/asfctl.key", adminTokenFile, appsFile},
}

// showable are the files show prints.
var showable = []string{clientEnvFile, adminTokenFile, appsFile, "ca.crt"}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "asfsecrets:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: asfsecrets init|show [flags]")
	}
	fs := flag.NewFlagSet("asfsecrets "+args[0], flag.ContinueOnError)
	dir := fs.String("dir", "/secrets", "directory of the deployment's secrets")
	deliver := fs.String("deliver", "/deliver", "init: directory of the consumers' directories (nats, polaris, lbclient, atom, webgate, loader, init)")
	days := fs.Int("days", 365, "init: validity of new service certificates in days")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "init":
		if fs.NArg() != 0 {
			return fmt.Errorf("init: unexpected arguments %v", fs.Args())
		}
		return initSecrets(*dir, *deliver, time.Duration(*days)*24*time.Hour, out)
	case "show":
		name := clientEnvFile
		if fs.NArg() > 1 {
			return errors.New("show: at most one file name")
		}
		if fs.NArg() == 1 {
			name = fs.Arg(0)
		}
		return show(*dir, name, out)
	}
	return fmt.Errorf("unknown command %q (init, show)", args[0])
}

// initSecrets makes what is missing in dir, then delivers to each consumer directory
// present under deliver.
func initSecrets(dir, deliver string, validity time.Duration, out io.Writer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	wants := pki.ServiceWants(certServices, "*")
	if err := pki.EnsureWith(filepath.Join(dir, "pki"), validity, wants); err != nil {
		return err
	}
	if _, err := natsbus.GenerateCredentials(filepath.Join(dir, "nats"), "asf"); err != nil {
		return err
	}
	if made, err := ensureToken(dir); err != nil {
		return err
	} else if made {
		fmt.Fprintln(out, "asfsecrets: made the polaris admin token (show admin-token prints it)")
	}
	if app, err := ensureApp(dir); err != nil {
		return err
	} else if app != "" {
		fmt.Fprintf(out, "asfsecrets: made app %s (show prints its client.env)\n", app)
	}
	fmt.Fprintf(out, "asfsecrets: %s holds the CA, certificates for %v, the NATS credentials, the admin token and the apps\n", dir, certServices)
	got, err := deliverAll(dir, deliver)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "asfsecrets: delivered to %v\n", got)
	return nil
}

// ensureToken makes dir/admin-token unless it exists; made reports whether it did.
func ensureToken(dir string) (made bool, err error) {
	path := filepath.Join(dir, adminTokenFile)
	if nonEmpty(path) {
		return false, nil
	}
	tok, err := randHex(24)
	if err != nil {
		return false, err
	}
	return true, writeAtomic(path, []byte("plr_"+tok+"\n"), 0o600)
}

// ensureApp makes apps.json and client.env unless both exist; app is the new app's id,
// "" when they were kept.
func ensureApp(dir string) (app string, err error) {
	appsPath, envPath := filepath.Join(dir, appsFile), filepath.Join(dir, clientEnvFile)
	if nonEmpty(appsPath) && nonEmpty(envPath) {
		return "", nil
	}
	id, err := randHex(4)
	if err != nil {
		return "", err
	}
	key, err := randHex(16)
	if err != nil {
		return "", err
	}
	secret, err := randHex(24)
	if err != nil {
		return "", err
	}
	app = "app" + id
	type appEntry struct {
		AppID        string   `json:"app_id"`
		APIKey       string   `json:"api_key"`
		APISecret    string   `json:"api_secret"`
		Capabilities []string `json:"capabilities"`
	}
	apps, err := json.Marshal(map[string][]appEntry{"apps": {{app, key, secret, []string{"*"}}}})
	if err != nil {
		return "", err
	}
	if err := writeAtomic(appsPath, append(apps, '\n'), 0o600); err != nil {
		return "", err
	}
	env := fmt.Sprintf("ASF_APP_ID=%s\nASF_API_KEY=%s\nASF_API_SECRET=%s\n", app, key, secret)
	return app, writeAtomic(envPath, []byte(env), 0o600)
}

// deliverAll copies each consumer's files into deliver/<consumer> when that directory
// exists, rewriting only files whose content differs. A directory naming no consumer is
// an error, so a misnamed volume fails the start instead of leaving a service without
// its files.
func deliverAll(dir, deliver string) ([]string, error) {
	entries, err := os.ReadDir(deliver)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var done []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		files, ok := deliveries[e.Name()]
		if !ok {
			return nil, fmt.Errorf("deliver: %s names no consumer (%v)", filepath.Join(deliver, e.Name()), consumers())
		}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				return nil, err
			}
			dst := filepath.Join(deliver, e.Name(), filepath.Base(f))
			if cur, err := os.ReadFile(dst); err == nil && bytes.Equal(cur, b) {
				continue
			}
			mode := os.FileMode(0o600)
			if ext := filepath.Ext(f); ext == ".crt" || ext == ".conf" {
				mode = 0o644
			}
			if err := writeAtomic(dst, b, mode); err != nil {
				return nil, err
			}
		}
		done = append(done, e.Name())
	}
	return done, nil
}

func consumers() []string {
	var names []string
	for k := range deliveries {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// show writes dir's file name (client.env, admin-token, apps.json or ca.crt) to out.
func show(dir, name string, out io.Writer) error {
	if !slices.Contains(showable, name) {
		return fmt.Errorf("show: %q is not one of %v", name, showable)
	}
	path := filepath.Join(dir, name)
	if name == "ca.crt" {
		path = filepath.Join(dir, "pki", name)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("show: no %s yet: start the deployment first (docker-compose up)", name)
	}
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}

func nonEmpty(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Size() > 0
}

func randHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// writeAtomic replaces path with data (temporary file + rename), so a reader never sees
// a partial file.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
