// Command asfnats makes the NATS credentials of a deployment: an nkey seed
// (<service>.nk, 0600) and public key (<service>.pub) for every service that holds a
// NATS user (polaris, lbclient), and auth.conf, the nats-server authorization of those
// public keys with each service's subject permissions. Existing seeds are kept.
//
//	asfnats init --dir secrets/nats [--prefix asf]
//	nats-server -c secrets/nats/auth.conf        # external NATS
//	polaris --nats-users secrets/nats             # embedded NATS
//	lbclient --nats-nkey-seed-file secrets/nats/lbclient.nk
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/athenaserving/asf/libs/buildinfo"
	"github.com/athenaserving/asf/libs/natsbus"
)

func main() {
	if buildinfo.PrintIfAsked(os.Stdout, "asfnats", os.Args[1:]) {
		return
	}
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // the usage was printed
		}
		fmt.Fprintln(os.Stderr, "asfnats:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprintln(os.Stderr, "usage: asfnats init --dir DIR [--prefix asf] (asfnats init --help lists the flags)")
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "init" {
		return fmt.Errorf("usage: asfnats init --dir DIR [--prefix asf]")
	}
	fs := flag.NewFlagSet("asfnats init", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory of the credentials (made 0700)")
	prefix := fs.String("prefix", "asf", "NATS subject prefix (polaris subject-prefix)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("--dir is required")
	}
	users, err := natsbus.GenerateCredentials(*dir, *prefix)
	if err != nil {
		return err
	}
	for _, u := range users {
		fmt.Printf("%s\t%s\n", u.Service, u.PublicKey)
	}
	return nil
}
