// Package cli is asectl's command tree (github.com/spf13/cobra): engine authoring, polaris
// operations through its admin API, and signed calls to the edge. Run executes one command
// line and returns its exit status: 0 ok, 1 error, 2 usage.
//
//	os.Exit(cli.Run(ctx, os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv}))
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/athenaserving/asf/libs/buildinfo"
	"github.com/athenaserving/asf/tools/asectl/internal/admin"
	"github.com/athenaserving/asf/tools/asectl/internal/ctxfile"
	"github.com/spf13/cobra"
)

// Exit statuses.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// IO is where a command reads and writes, and its environment.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	Getenv   func(string) string
}

// app is one command line's state: its streams and global flags.
type app struct {
	io IO
	// global flags
	configPath, contextName, output string
	polaris, token, ca, webgate     string
}

// usageError is a command line that does not parse; it exits with ExitUsage.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// args wraps a cobra argument check so that its failure is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// cobraUsage are the prefixes of cobra's own usage errors.
var cobraUsage = []string{"unknown command", "unknown flag", "unknown shorthand", "required flag", "flag needs", "invalid argument", "accepts ", "requires at least", "bad flag"}

func isUsage(err error) bool {
	var u usageError
	if errors.As(err, &u) {
		return true
	}
	for _, p := range cobraUsage {
		if strings.HasPrefix(err.Error(), p) {
			return true
		}
	}
	return false
}

// Run executes the command line args and returns the exit status.
func Run(ctx context.Context, argv []string, o IO) int {
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	a := &app{io: o}
	root := a.root()
	root.SetArgs(argv)
	root.SetIn(o.In)
	root.SetOut(o.Out)
	root.SetErr(o.Err)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(o.Err, "Error:", explain(err))
	if isUsage(err) {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(o.Err, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return ExitUsage
	}
	return ExitError
}

// explain adds what to do to the errors a user can act on.
func explain(err error) string {
	msg := err.Error()
	var ae *admin.Error
	switch {
	case errors.As(err, &ae) && ae.Code == admin.CodeUnauthorized:
		return msg + "\n  the token is missing, unknown or revoked: asectl login --polaris URL --token TOKEN (an admin token from polaris's first-start log or its admin-token secret)"
	case errors.As(err, &ae) && ae.Code == admin.CodeForbidden:
		return msg + "\n  this needs an admin token; the current context's token may only read (asectl login --token ADMIN_TOKEN)"
	case errors.Is(err, admin.ErrUnreachable):
		return msg + "\n  is polaris running, and is the context's address its admin API (console-listen, default :8095)? asectl context ls shows it"
	}
	return msg
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:     "asectl",
		Version: buildinfo.Get().Short(), // --version: "asectl version <version> commit <commit> <go>"
		Short:   "Athena Serving's command line: engines, operations and calls",
		Long: `asectl drives an engine from a new project to a served, signed call, and operates a
running Athena Serving: services and their loaders, config, capability schemas and apps
through polaris's admin API, and calls through the edge (webgate).

Exit status: 0 ok, 1 error, 2 usage.`,
		Example: `  asectl engine new --lang python greeter
  asectl login --polaris http://127.0.0.1:8095 --token "$TOKEN" --webgate http://127.0.0.1:8889
  asectl svc ls
  asectl call once greeter --text athena`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = false
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "contexts file (env ASECTL_CONFIG; default <user config dir>/asectl/config.yaml)")
	pf.StringVar(&a.contextName, "context", "", "context to use instead of the current one")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml")
	pf.StringVar(&a.polaris, "polaris", "", "polaris admin API URL (overrides the context)")
	pf.StringVar(&a.token, "token", "", "polaris token (overrides the context; env ASECTL_TOKEN)")
	pf.StringVar(&a.ca, "ca", "", "CA file of an https admin API (overrides the context)")
	pf.StringVar(&a.webgate, "webgate", "", "edge (webgate) base URL for calls (overrides the context)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("context", a.completeContexts)
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		switch a.output {
		case "table", "json", "yaml":
			return nil
		}
		return usagef("output format %q: want table, json or yaml", a.output)
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.loginCmd(), a.contextCmd(), a.engineCmd(), a.svcCmd(), a.topCmd(), a.cfgCmd(),
		a.schemaCmd(), a.appCmd(), a.callCmd())
	return root
}

// path is the contexts file's path.
func (a *app) path() (string, error) {
	if a.configPath != "" {
		return a.configPath, nil
	}
	if p := a.io.Getenv("ASECTL_CONFIG"); p != "" {
		return p, nil
	}
	return ctxfile.DefaultPath()
}

// current is the context in force with the command line's overrides applied; without a
// contexts file the overrides alone make it.
func (a *app) current() (ctxfile.Context, error) {
	var c ctxfile.Context
	p, err := a.path()
	if err != nil {
		return c, err
	}
	f, err := ctxfile.Load(p)
	if err != nil {
		return c, err
	}
	got, _, err := f.Get(a.contextName)
	switch {
	case err == nil:
		c = *got
	case a.contextName != "" || (a.polaris == "" && a.webgate == ""):
		return c, err
	}
	return a.overrides(c), nil
}

func (a *app) overrides(c ctxfile.Context) ctxfile.Context {
	if a.polaris != "" {
		c.Polaris = a.polaris
	}
	if a.token != "" {
		c.Token = a.token
	} else if t := a.io.Getenv("ASECTL_TOKEN"); t != "" {
		c.Token = t
	}
	if a.ca != "" {
		c.CA = a.ca
	}
	if a.webgate != "" {
		c.Webgate = a.webgate
	}
	return c
}

// admin returns a client of the current context's admin API.
func (a *app) admin() (*admin.Client, error) {
	c, err := a.current()
	if err != nil {
		return nil, err
	}
	if c.Polaris == "" {
		return nil, errors.New("no polaris address: asectl login --polaris URL --token TOKEN, or --polaris")
	}
	return admin.New(admin.Options{URL: c.Polaris, Token: c.Token, CA: c.CA, Cert: c.Cert, Key: c.Key})
}
