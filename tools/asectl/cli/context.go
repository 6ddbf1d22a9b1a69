package cli

import (
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/athenaserving/asf/tools/asectl/internal/admin"
	"github.com/athenaserving/asf/tools/asectl/internal/ctxfile"
	"github.com/spf13/cobra"
)

func (a *app) loginCmd() *cobra.Command {
	var name, cert, key, grpcAddr, tokenFile string
	var c ctxfile.Context
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Check a polaris address and token and keep them as a context",
		Long: `login checks the token against polaris's admin API (whoami) and stores the address,
token, TLS files, edge URL and app credentials as a context in the contexts file (mode
0600), making it the current one. Give the token with --token, --token-file FILE (- reads
stdin) or ASECTL_TOKEN.`,
		Example: `  asectl login --polaris http://127.0.0.1:8095 --token "$TOKEN" --webgate http://127.0.0.1:8889
  asectl login --name prod --polaris https://polaris.example:8095 --ca ca.crt --token-file token.txt`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.Polaris, c.Token, c.CA, c.Cert, c.Key, c.Webgate, c.PolarisGRPC = a.polaris, a.token, a.ca, cert, key, a.webgate, grpcAddr
			if c.Token == "" {
				c.Token = a.io.Getenv("ASECTL_TOKEN")
			}
			if tokenFile != "" {
				t, err := readInput(a.io.In, tokenFile)
				if err != nil {
					return err
				}
				c.Token = strings.TrimSpace(string(t))
			}
			if c.Polaris == "" || c.Token == "" {
				return usagef("login needs --polaris URL and a token (--token, --token-file or ASECTL_TOKEN)")
			}
			if u, err := url.Parse(c.Polaris); err == nil && u.Scheme == "" {
				c.Polaris = "http://" + c.Polaris
			}
			cl, err := admin.New(admin.Options{URL: c.Polaris, Token: c.Token, CA: c.CA, Cert: c.Cert, Key: c.Key})
			if err != nil {
				return err
			}
			who, err := cl.Whoami(cmd.Context())
			if err != nil {
				return fmt.Errorf("login: %w", err)
			}
			p, err := a.path()
			if err != nil {
				return err
			}
			f, err := ctxfile.Load(p)
			if err != nil {
				return err
			}
			if name == "" {
				name = "default"
			}
			if old := f.Contexts[name]; old != nil { // keep what this login does not set
				if c.Webgate == "" {
					c.Webgate = old.Webgate
				}
				if c.PolarisGRPC == "" {
					c.PolarisGRPC = old.PolarisGRPC
				}
				c.AppID, c.APIKey, c.APISecret = old.AppID, old.APIKey, old.APISecret
			}
			f.Contexts[name] = &c
			f.Current = name
			if err := f.Save(p); err != nil {
				return err
			}
			view := map[string]any{"context": name, "polaris": c.Polaris, "token_name": who.Name, "role": who.Role, "file": p}
			return a.print(view, func(w io.Writer) {
				fmt.Fprintf(w, "logged in to %s as %s (%s); context %q saved in %s\n", c.Polaris, who.Name, who.Role, name, p)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "context name (default \"default\")")
	fl.StringVar(&tokenFile, "token-file", "", "read the token from FILE (- is stdin)")
	fl.StringVar(&cert, "cert", "", "client certificate for an admin API behind mutual TLS")
	fl.StringVar(&key, "key", "", "its key")
	fl.StringVar(&grpcAddr, "polaris-grpc", "", "polaris's gRPC address (host:port), where `engine run` registers loaders")
	return cmd
}

func (a *app) contextCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "context",
		Aliases: []string{"contexts"},
		Short:   "List, switch, change and delete contexts",
		Example: "  asectl context ls\n  asectl context use prod\n  asectl context set --webgate http://127.0.0.1:8889",
	}
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List the contexts (tokens and secrets are not shown)",
		Example: "  asectl context ls -o yaml",
		Args:    args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			f, p, err := a.loadFile()
			if err != nil {
				return err
			}
			type view struct {
				Name        string `json:"name"`
				Current     bool   `json:"current"`
				Polaris     string `json:"polaris"`
				Webgate     string `json:"webgate,omitempty"`
				PolarisGRPC string `json:"polaris_grpc,omitempty"`
				AppID       string `json:"app_id,omitempty"`
			}
			var out []view
			for _, n := range f.Names() {
				c := f.Contexts[n]
				out = append(out, view{n, n == f.Current, c.Polaris, c.Webgate, c.PolarisGRPC, c.AppID})
			}
			return a.print(map[string]any{"file": p, "contexts": out}, func(w io.Writer) {
				row(w, "CURRENT", "NAME", "POLARIS", "WEBGATE", "APP")
				for _, v := range out {
					cur := ""
					if v.Current {
						cur = "*"
					}
					row(w, cur, v.Name, v.Polaris, dash(v.Webgate), dash(v.AppID))
				}
			})
		},
	}
	use := &cobra.Command{
		Use:               "use NAME",
		Short:             "Make context NAME the current one",
		Example:           "  asectl context use prod",
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: a.completeContexts,
		RunE: func(_ *cobra.Command, argv []string) error {
			return a.editContext(argv[0], func(f *ctxfile.File) { f.Current = argv[0] })
		},
	}
	del := &cobra.Command{
		Use:               "delete NAME",
		Aliases:           []string{"rm"},
		Short:             "Delete context NAME",
		Example:           "  asectl context delete old",
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: a.completeContexts,
		RunE: func(_ *cobra.Command, argv []string) error {
			return a.editContext(argv[0], func(f *ctxfile.File) {
				delete(f.Contexts, argv[0])
				if f.Current == argv[0] {
					f.Current = ""
				}
			})
		},
	}
	var s ctxfile.Context
	set := &cobra.Command{
		Use:   "set",
		Short: "Change fields of the current context (or --context NAME)",
		Long: `set changes the edge URL, polaris's gRPC address and the app credentials that calls
sign with, in the current context; flags not given keep their value.`,
		Example: "  asectl context set --webgate http://127.0.0.1:8889 --app-id app1 --api-key K --api-secret S",
		Args:    args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			return a.editFile(func(f *ctxfile.File) error {
				c, _, err := f.Get(a.contextName)
				if err != nil {
					return err
				}
				for dst, v := range map[*string]string{&c.Webgate: a.webgate, &c.PolarisGRPC: s.PolarisGRPC, &c.AppID: s.AppID,
					&c.APIKey: s.APIKey, &c.APISecret: s.APISecret, &c.Polaris: a.polaris, &c.Token: a.token, &c.CA: a.ca} {
					if v != "" {
						*dst = v
					}
				}
				return nil
			})
		},
	}
	set.Flags().StringVar(&s.PolarisGRPC, "polaris-grpc", "", "polaris's gRPC address (host:port)")
	set.Flags().StringVar(&s.AppID, "app-id", "", "app id calls sign as")
	set.Flags().StringVar(&s.APIKey, "api-key", "", "its API key")
	set.Flags().StringVar(&s.APISecret, "api-secret", "", "its API secret")
	cmd.AddCommand(ls, use, del, set)
	return cmd
}

func (a *app) loadFile() (*ctxfile.File, string, error) {
	p, err := a.path()
	if err != nil {
		return nil, "", err
	}
	f, err := ctxfile.Load(p)
	return f, p, err
}

// editFile loads the contexts file, applies edit and saves it.
func (a *app) editFile(edit func(*ctxfile.File) error) error {
	f, p, err := a.loadFile()
	if err != nil {
		return err
	}
	if err := edit(f); err != nil {
		return err
	}
	return f.Save(p)
}

// editContext applies edit to the contexts file when it holds context name.
func (a *app) editContext(name string, edit func(*ctxfile.File)) error {
	return a.editFile(func(f *ctxfile.File) error {
		if f.Contexts[name] == nil {
			return fmt.Errorf("no context %q (asectl context ls lists them)", name)
		}
		edit(f)
		return nil
	})
}

func (a *app) completeContexts(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	f, _, err := a.loadFile()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	return f.Names(), cobra.ShellCompDirectiveNoFileComp
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
