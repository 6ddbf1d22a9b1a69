// Command asfbox is the helper copied into every Athena Serving image, whose base has no
// shell: `asfbox probe URL` is the container healthcheck (exit 0 on a 2xx answer), and
// `asfbox run` starts a service with its advertised address set to the container's own IP
// when the environment does not set it already.
//
//	asfbox probe [-q] [-timeout 2s] http://127.0.0.1:5091/readyz
//	asfbox run -advertise-env ASF_LOADER_ADVERTISE -port 5090 -- /usr/local/bin/loader [args]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: asfbox probe|run ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "probe", "get":
		err = probe(os.Args[2:], os.Stdout)
	case "run":
		err = run(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (probe, run)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "asfbox:", err)
		os.Exit(1)
	}
}

// probe GETs a URL and fails unless the answer is 2xx; the body goes to out unless -q.
func probe(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	quiet := fs.Bool("q", false, "do not print the body")
	timeout := fs.Duration("timeout", 2*time.Second, "request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("probe: one URL expected")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fs.Arg(0), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if !*quiet {
		if _, err := io.Copy(out, resp.Body); err != nil {
			return err
		}
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", fs.Arg(0), resp.Status)
	}
	return nil
}

// run sets the advertise variable (when unset) and replaces itself with the command.
func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	env := fs.String("advertise-env", "", "environment variable to set to <container IP>:<port> when it is empty")
	port := fs.String("port", "", "port of the advertised address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cmd := fs.Args()
	if len(cmd) == 0 {
		return errors.New("run: no command")
	}
	if *env != "" && os.Getenv(*env) == "" {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return err
		}
		ip := OwnIP(addrs)
		if ip == "" {
			return errors.New("run: no non-loopback address to advertise")
		}
		if err := os.Setenv(*env, net.JoinHostPort(ip, *port)); err != nil {
			return err
		}
	}
	path, err := exec.LookPath(cmd[0])
	if err != nil {
		return err
	}
	return syscall.Exec(path, cmd, os.Environ())
}

// OwnIP returns the first global unicast address of addrs, IPv4 first; "" when none.
func OwnIP(addrs []net.Addr) string {
	var v6 string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || !n.IP.IsGlobalUnicast() {
			continue
		}
		if n.IP.To4() != nil {
			return n.IP.String()
		}
		if v6 == "" {
			v6 = n.IP.String()
		}
	}
	return v6
}
