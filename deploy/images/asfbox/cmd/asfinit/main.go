// Command asfinit pushes config files into polaris's config center once and exits: the
// one-shot init job of the compose deployment and the Helm chart. Files come from a
// directory laid out as <project>/<group>/<service>/<version>/<file> and from --file
// KEY=PATH pairs (KEY is project/group/service/version/file), e.g. a mounted secret.
// A file whose current content is already the same is not pushed again, so a restarted
// job adds no revisions.
//
//	asfinit --polaris polaris:6868 --dir /config --file asf/default/webgate/v1/apps.json=/run/secrets/apps.json
//
// Pushing config is an admin operation: the polaris admin token comes from
// --admin-token-file, ASF_INIT_ADMIN_TOKEN or ASF_POLARIS_ADMIN_TOKEN (the variable polaris
// itself reads, so both can share one env file or Secret) — never from a flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/rs/zerolog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type fileFlags []string

func (f *fileFlags) String() string     { return fmt.Sprint(*f) }
func (f *fileFlags) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	fs := flag.NewFlagSet("asfinit", flag.ExitOnError)
	addr := fs.String("polaris", "polaris:6868", "polaris gRPC address")
	dir := fs.String("dir", "", "directory of config files: <project>/<group>/<service>/<version>/<file>")
	wait := fs.Duration("wait", 2*time.Minute, "how long to keep retrying while polaris is unreachable")
	comment := fs.String("comment", "asfinit", "revision comment")
	var files fileFlags
	fs.Var(&files, "file", "KEY=PATH: push PATH as KEY (project/group/service/version/file); repeatable")
	var tc tlsx.Config
	fs.StringVar(&tc.CA, "tls-ca", os.Getenv("ASF_INIT_TLS_CA"), "internal TLS: PEM CA bundle (env ASF_INIT_TLS_CA)")
	fs.StringVar(&tc.Cert, "tls-cert", os.Getenv("ASF_INIT_TLS_CERT"), "internal TLS: PEM certificate with a spiffe://asf/<service>/<instance> URI SAN (env ASF_INIT_TLS_CERT)")
	fs.StringVar(&tc.Key, "tls-key", os.Getenv("ASF_INIT_TLS_KEY"), "internal TLS: PEM key of tls-cert (env ASF_INIT_TLS_KEY)")
	fs.BoolVar(&tc.Insecure, "insecure", false, "plaintext gRPC to polaris (without the tls-* files)")
	tokenFile := fs.String("admin-token-file", "", "file holding the polaris admin token (default: env ASF_INIT_ADMIN_TOKEN, then ASF_POLARIS_ADMIN_TOKEN)")
	_ = fs.Parse(os.Args[1:])
	token, err := adminToken(*tokenFile, os.Getenv)
	if err != nil {
		fail(err)
	}
	if err := tc.Check(); err != nil {
		fail(err)
	}
	tb, err := tlsx.Load(tc, zerolog.New(os.Stderr))
	if err != nil {
		fail(err)
	}

	var items []Item
	if *dir != "" {
		got, err := ScanDir(*dir)
		if err != nil {
			fail(err)
		}
		items = append(items, got...)
	}
	for _, f := range files {
		it, err := ParseFileFlag(f)
		if err != nil {
			fail(err)
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		fail(errors.New("nothing to push: give --dir or --file"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	cc, err := grpcx.Dial(*addr, tlsx.DialOption(tb, "polaris"))
	if err != nil {
		fail(err)
	}
	defer cc.Close()
	client := polarispb.NewConfigClient(cc)
	for _, it := range items {
		if err := pushRetry(ctx, client, it, *comment); err != nil {
			fail(err)
		}
	}
	fmt.Printf("asfinit: %d config files in polaris %s\n", len(items), *addr)
}

// adminToken reads the admin token from file, else from the environment.
func adminToken(file string, getenv func(string) string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("admin token: %w", err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("admin token file %s is empty", file)
	}
	for _, k := range []string{"ASF_INIT_ADMIN_TOKEN", "ASF_POLARIS_ADMIN_TOKEN"} {
		if t := strings.TrimSpace(getenv(k)); t != "" {
			return t, nil
		}
	}
	return "", errors.New("no polaris admin token: set --admin-token-file, ASF_INIT_ADMIN_TOKEN or ASF_POLARIS_ADMIN_TOKEN (pushing config is an admin operation)")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "asfinit:", err)
	os.Exit(1)
}

// pushRetry pushes it unless polaris already holds the same content, retrying on errors
// until ctx ends.
func pushRetry(ctx context.Context, client polarispb.ConfigClient, it Item, comment string) error {
	content, err := os.ReadFile(it.Path)
	if err != nil {
		return err
	}
	key := it.Key.Proto()
	backoff := 200 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := push(cctx, client, key, content, comment)
		cancel()
		if err == nil {
			fmt.Printf("asfinit: %s %s\n", it.Key, res)
			return nil
		}
		if c := status.Code(err); c == codes.PermissionDenied || c == codes.Unauthenticated || c == codes.InvalidArgument {
			return fmt.Errorf("%s: %w", it.Key, err) // retrying cannot help
		}
		fmt.Fprintf(os.Stderr, "asfinit: %s: %v (retrying)\n", it.Key, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", it.Key, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 3*time.Second)
	}
}

func push(ctx context.Context, client polarispb.ConfigClient, key *polarispb.ConfigKey, content []byte, comment string) (string, error) {
	cur, err := client.Get(ctx, &polarispb.GetConfigRequest{Key: key})
	if err == nil && string(cur.GetContent()) == string(content) {
		return fmt.Sprintf("unchanged (revision %d)", cur.GetRevision()), nil
	}
	f, err := client.Push(ctx, &polarispb.PushConfigRequest{Key: key, Content: content, Comment: comment})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("pushed (revision %d)", f.GetRevision()), nil
}
