// Command asfpki generates the internal plane's certificates: a CA and, per service
// instance, an ECDSA P-256 certificate with the URI SAN spiffe://asf/<service>/<instance>
// (see libs/pki and docs/operations.md, "Internal TLS").
//
//	asfpki init  --dir pki [--instance 127.0.0.1] [--names a,b] [--services webgate,atom,...]
//	asfpki issue --dir pki --service loader --instance 10.0.0.7 [--names loader,10.0.0.7] [--out name]
//	asfpki ca    --dir pki-next        # a new CA for a rotation (ca.crt, ca.key)
//
// init creates what is missing (the CA, one certificate per service named
// <service>.crt/.key) and keeps what exists, so it can run at every start.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/athenaserving/asf/libs/buildinfo"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/pki"
)

// defaultServices are the certificates init makes unless --services says otherwise:
// the five services and asfctl for tools (asfbench, schema pushes).
var defaultServices = strings.Join(pki.Services, ",")

func main() {
	if buildinfo.PrintIfAsked(os.Stdout, "asfpki", os.Args[1:]) {
		return
	}
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "asfpki:", err)
		os.Exit(1)
	}
}

func usage() error {
	return errors.New("usage: asfpki init|issue|ca [flags] (-h for the flags of each)")
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func run(args []string) error {
	if len(args) == 0 {
		return usage()
	}
	if a := args[0]; a == "-h" || a == "-help" || a == "--help" {
		fmt.Fprintln(os.Stderr, usage())
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("asfpki "+args[0], flag.ContinueOnError)
	dir := fs.String("dir", "pki", "PKI directory: ca.crt, ca.key and <name>.crt/.key")
	instance := fs.String("instance", "127.0.0.1", "instance part of the identity (a host name or address covers every port on it); \"*\": a tier certificate shared by every replica of the service (compose, Helm); init with \"\": each service's own name")
	names := fs.String("names", "", "extra SANs, comma separated: IP addresses become IP SANs, others DNS SANs (localhost and 127.0.0.1 are always in)")
	services := fs.String("services", defaultServices, "init: services to make certificates for")
	service := fs.String("service", "", "issue: the service of the identity")
	out := fs.String("out", "", "issue: file name without extension (default the service)")
	days := fs.Int("days", 365, "validity of issued certificates in days")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "init":
		validity := time.Duration(*days) * 24 * time.Hour
		wants := pki.ServiceWants(split(*services), *instance, split(*names)...)
		if err := pki.EnsureWith(*dir, validity, wants); err != nil {
			return err
		}
		fmt.Printf("asfpki: %s holds the CA and certificates for %s\n", *dir, strings.Join(split(*services), ", "))
		return nil
	case "issue":
		if *service == "" {
			return errors.New("issue: --service is required")
		}
		ca, err := pki.LoadCA(*dir)
		if err != nil {
			return err
		}
		ca.LeafValidity = time.Duration(*days) * 24 * time.Hour
		leaf, err := ca.Issue(grpcx.Identity{Service: *service, Instance: *instance}, split(*names)...)
		if err != nil {
			return err
		}
		name := *out
		if name == "" {
			name = *service
		}
		if err := leaf.Write(*dir, name); err != nil {
			return err
		}
		fmt.Printf("asfpki: %s/%s.crt is %s\n", *dir, name, grpcx.Identity{Service: *service, Instance: *instance})
		return nil
	case "ca":
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
		ca, err := pki.NewCA("asf internal CA")
		if err != nil {
			return err
		}
		if err := ca.WriteFiles(*dir); err != nil {
			return err
		}
		fmt.Printf("asfpki: new CA in %s/ca.crt and ca.key\n", *dir)
		return nil
	}
	return usage()
}
