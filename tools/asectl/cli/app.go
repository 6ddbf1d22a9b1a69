package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/athenaserving/asf/tools/asectl/internal/admin"
	"github.com/athenaserving/asf/tools/asectl/internal/apps"
	"github.com/athenaserving/asf/tools/asectl/internal/ctxfile"
	"github.com/spf13/cobra"
)

// appsKey is webgate's apps document in polaris.
var appsKey = admin.Key{Project: admin.DefaultProject, Group: admin.DefaultGroup, Service: "webgate", Version: "v1", File: "apps.json"}

// limitFlags are the app settings flags of create and limits.
type limitFlags struct {
	qps          float64
	maxSessions  int
	capabilities []string
	ipAllow      []string
	enable       bool
	disable      bool
}

func (l *limitFlags) add(cmd *cobra.Command, toggles bool) {
	f := cmd.Flags()
	f.Float64Var(&l.qps, "qps", 0, "requests per second (once requests and new sessions); 0 is unlimited")
	f.IntVar(&l.maxSessions, "max-sessions", 0, "concurrent once requests, connections and sub-sessions; 0 is unlimited")
	f.StringSliceVar(&l.capabilities, "capabilities", nil, "capabilities the app may call (comma-separated; empty or * is all)")
	f.StringSliceVar(&l.ipAllow, "ip-allow", nil, "client addresses allowed (CIDRs or IPs, comma-separated; empty is all)")
	if toggles {
		f.BoolVar(&l.enable, "enable", false, "accept the app's key again")
		f.BoolVar(&l.disable, "disable", false, "refuse the app's key from the next request on")
	}
}

// limits are the flags the user set.
func (l *limitFlags) limits(cmd *cobra.Command) (apps.Limits, error) {
	var out apps.Limits
	f := cmd.Flags()
	if f.Changed("qps") {
		out.QPS = &l.qps
	}
	if f.Changed("max-sessions") {
		out.MaxSessions = &l.maxSessions
	}
	if f.Changed("capabilities") {
		out.Capabilities = &l.capabilities
	}
	if f.Changed("ip-allow") {
		out.IPAllow = &l.ipAllow
	}
	if l.enable && l.disable {
		return out, usagef("--enable and --disable together")
	}
	if l.enable || l.disable {
		d := l.disable
		out.Disabled = &d
	}
	return out, nil
}

// editApps reads apps.json from polaris (none yet: an empty document), applies edit, and
// pushes the result as a new revision.
func (a *app) editApps(ctx context.Context, comment string, edit func(*apps.Doc) error) error {
	c, err := a.admin()
	if err != nil {
		return err
	}
	doc, err := loadApps(ctx, c)
	if err != nil {
		return err
	}
	if err := edit(doc); err != nil {
		return err
	}
	b, err := doc.Marshal()
	if err != nil {
		return err
	}
	_, err = c.Push(ctx, appsKey, b, comment, "")
	return err
}

// loadApps reads apps.json from polaris; none yet is an empty document.
func loadApps(ctx context.Context, c *admin.Client) (*apps.Doc, error) {
	var content []byte
	cur, err := c.Get(ctx, appsKey, "")
	switch {
	case admin.IsNotFound(err):
	case err != nil:
		return nil, err
	default:
		content = cur.Bytes()
	}
	doc, err := apps.Parse(content)
	if err != nil {
		return nil, fmt.Errorf("%s in polaris: %w (fix it with asectl cfg push %s FILE)", appsKey, err, appsKey)
	}
	return doc, nil
}

func appTable(as []apps.App) func(io.Writer) {
	return func(w io.Writer) {
		row(w, "APP ID", "API KEY", "CAPABILITIES", "QPS", "MAX SESSIONS", "IP ALLOW", "DISABLED")
		for _, x := range as {
			row(w, x.AppID, x.APIKey, dash(strings.Join(x.Capabilities, ",")), x.QPS, x.MaxSessions, dash(strings.Join(x.IPAllow, ",")), x.Disabled)
		}
	}
}

// printSecret prints an app with its secret, which is shown this once.
func (a *app) printSecret(x apps.App, verb string) error {
	return a.print(x, func(w io.Writer) {
		fmt.Fprintf(w, "app %s %s\n", x.AppID, verb)
		row(w, "app_id:", x.AppID)
		row(w, "api_key:", x.APIKey)
		row(w, "api_secret:", x.APISecret)
		fmt.Fprintln(w, "store the secret now: asectl does not show it again")
	})
}

// saveApp stores x's credentials in the current context for `call`.
func (a *app) saveApp(x apps.App) error {
	return a.editFile(func(f *ctxfile.File) error {
		c, _, err := f.Get(a.contextName)
		if err != nil {
			return err
		}
		c.AppID, c.APIKey, c.APISecret = x.AppID, x.APIKey, x.APISecret
		return nil
	})
}

func (a *app) appCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "app",
		Aliases: []string{"apps"},
		Short:   "Client apps of the edge: create, list, rotate keys, set limits, delete",
		Long: `Apps are webgate's client credentials and limits (apps.json in polaris, applied at once).
Secrets are printed once, when they are made (create, rotate-key); ls never shows them.
Note: while polaris holds no apps.json, webgate accepts only its --demo-app; the first
app created replaces it.`,
		Example: "  asectl app create app1 --capabilities tts,asr --qps 50 --save\n  asectl app ls\n  asectl app rotate-key app1",
	}
	var lf limitFlags
	var save bool
	create := &cobra.Command{
		Use:     "create APP_ID",
		Short:   "Create an app with a new key pair (the secret is printed once)",
		Example: "  asectl app create app1 --capabilities greeter --max-sessions 20 --save",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			l, err := lf.limits(cmd)
			if err != nil {
				return err
			}
			var made apps.App
			if err := a.editApps(cmd.Context(), "app "+argv[0]+" created by asectl", func(d *apps.Doc) error {
				made, err = d.Create(argv[0], l)
				return err
			}); err != nil {
				return err
			}
			if save {
				if err := a.saveApp(made); err != nil {
					return fmt.Errorf("app created, but saving it in the context failed: %w", err)
				}
			}
			return a.printSecret(made, "created")
		},
	}
	lf.add(create, false)
	create.Flags().BoolVar(&save, "save", false, "also keep the credentials in the current context, for asectl call")

	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List the apps and their limits (never their secrets)",
		Example: "  asectl app ls -o yaml",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.admin()
			if err != nil {
				return err
			}
			doc, err := loadApps(cmd.Context(), c)
			if err != nil {
				return err
			}
			as := doc.List(false)
			return a.print(map[string]any{"apps": as}, appTable(as))
		},
	}
	var saveRot bool
	rotate := &cobra.Command{
		Use:     "rotate-key APP_ID",
		Short:   "Give an app a new key pair; the old key is refused from then on",
		Example: "  asectl app rotate-key app1",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			var made apps.App
			if err := a.editApps(cmd.Context(), "app "+argv[0]+" key rotated by asectl", func(d *apps.Doc) (err error) {
				made, err = d.Rotate(argv[0])
				return err
			}); err != nil {
				return err
			}
			if saveRot {
				if err := a.saveApp(made); err != nil {
					return fmt.Errorf("key rotated, but saving it in the context failed: %w", err)
				}
			}
			return a.printSecret(made, "has a new key pair")
		},
	}
	rotate.Flags().BoolVar(&saveRot, "save", false, "also keep the new credentials in the current context")
	var lf2 limitFlags
	limits := &cobra.Command{
		Use:     "limits APP_ID",
		Short:   "Change an app's limits, capabilities, allowed addresses, or enable/disable it",
		Example: "  asectl app limits app1 --qps 100 --max-sessions 0\n  asectl app limits app1 --disable",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			l, err := lf2.limits(cmd)
			if err != nil {
				return err
			}
			var got apps.App
			if err := a.editApps(cmd.Context(), "app "+argv[0]+" limits set by asectl", func(d *apps.Doc) (err error) {
				got, err = d.SetLimits(argv[0], l)
				return err
			}); err != nil {
				return err
			}
			return a.print(got, appTable([]apps.App{got}))
		},
	}
	lf2.add(limits, true)
	del := &cobra.Command{
		Use:     "delete APP_ID",
		Aliases: []string{"rm"},
		Short:   "Delete an app: its key is refused from the next request on",
		Example: "  asectl app delete app1",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := a.editApps(cmd.Context(), "app "+argv[0]+" deleted by asectl", func(d *apps.Doc) error { return d.Delete(argv[0]) }); err != nil {
				return err
			}
			return a.print(map[string]any{"deleted": argv[0]}, func(w io.Writer) { fmt.Fprintf(w, "app %s deleted\n", argv[0]) })
		},
	}
	cmd.AddCommand(create, ls, rotate, limits, del)
	return cmd
}
