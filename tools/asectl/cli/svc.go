package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/athenaserving/asf/tools/asectl/internal/admin"
	"github.com/spf13/cobra"
)

func (a *app) svcCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "svc",
		Aliases: []string{"service", "services"},
		Short:   "Services and their instances: list, describe, enable, disable, weight",
		Example: "  asectl svc ls\n  asectl svc describe echo\n  asectl svc disable echo 127.0.0.1:5090",
	}
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List the services with their providers, consumers and load",
		Example: "  asectl svc ls -o json",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.admin()
			if err != nil {
				return err
			}
			ss, err := c.Services(cmd.Context())
			if err != nil {
				return err
			}
			return a.print(map[string]any{"services": ss}, func(w io.Writer) {
				row(w, "SERVICE", "PROVIDERS", "ROUTABLE", "CONSUMERS", "IDLE", "TOTAL")
				for _, s := range ss {
					row(w, s.Service, s.Providers, s.Routable, s.Consumers, s.Idle, s.Total)
				}
			})
		},
	}
	var kind string
	describe := &cobra.Command{
		Use:               "describe SERVICE",
		Short:             "Show a service's instances: load, admin state, last report",
		Example:           "  asectl svc describe echo --kind provider",
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.admin()
			if err != nil {
				return err
			}
			is, err := c.Instances(cmd.Context(), argv[0], kind)
			if err != nil {
				return err
			}
			return a.print(map[string]any{"service": argv[0], "instances": is}, func(w io.Writer) {
				row(w, "ADDR", "KIND", "VERSION", "ENABLED", "WEIGHT", "LIVE", "IDLE", "TOTAL", "BEST", "LAST SEEN")
				for _, i := range is {
					row(w, i.Instance.Addr, i.Instance.Kind, dash(i.Instance.Version), i.Admin.Enabled, i.Admin.Weight,
						i.Load.Live, i.Load.Idle, i.Load.Total, i.Load.Best, ago(i.LastSeen))
				}
			})
		},
	}
	describe.Flags().StringVar(&kind, "kind", "", "only provider or consumer instances")
	setAdmin := func(use, short, example string, n int, build func(argv []string) (*bool, *int32, error)) *cobra.Command {
		return &cobra.Command{
			Use:               use,
			Short:             short,
			Example:           example,
			Args:              args(cobra.ExactArgs(n)),
			ValidArgsFunction: a.completeServiceAddr,
			RunE: func(cmd *cobra.Command, argv []string) error {
				en, wt, err := build(argv)
				if err != nil {
					return err
				}
				c, err := a.admin()
				if err != nil {
					return err
				}
				if err := c.SetAdmin(cmd.Context(), argv[0], argv[1], en, wt); err != nil {
					return err
				}
				view := map[string]any{"service": argv[0], "addr": argv[1]}
				if en != nil {
					view["enabled"] = *en
				}
				if wt != nil {
					view["weight"] = *wt
				}
				return a.print(view, func(w io.Writer) { fmt.Fprintf(w, "%s %s: %s\n", argv[0], argv[1], short) })
			},
		}
	}
	on, off := true, false
	enable := setAdmin("enable SERVICE ADDR", "enabled: it takes new requests again", "  asectl svc enable echo 127.0.0.1:5090", 2,
		func([]string) (*bool, *int32, error) { return &on, nil, nil })
	disable := setAdmin("disable SERVICE ADDR", "disabled: no new requests go to it; running sessions go on", "  asectl svc disable echo 127.0.0.1:5090", 2,
		func([]string) (*bool, *int32, error) { return &off, nil, nil })
	weight := setAdmin("weight SERVICE ADDR WEIGHT", "weight set", "  asectl svc weight echo 127.0.0.1:5090 50", 3,
		func(argv []string) (*bool, *int32, error) {
			n, err := strconv.ParseInt(argv[2], 10, 32)
			if err != nil || n < 0 || n > 10000 {
				return nil, nil, usagef("weight %q: want a number from 0 to 10000", argv[2])
			}
			w := int32(n)
			return nil, &w, nil
		})
	weight.Short = "Set an instance's weight (0..10000; 100 is the default)"
	enable.Short = "Put an instance back into rotation"
	disable.Short = "Take an instance out of rotation (running sessions go on)"
	cmd.AddCommand(ls, describe, enable, disable, weight)
	return cmd
}

// ago is how long ago t was, in whole seconds.
func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Truncate(time.Second).String() + " ago"
}

// completeServices offers the service names polaris knows.
func (a *app) completeServices(cmd *cobra.Command, argv []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(argv) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := a.admin()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	ss, err := c.Services(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []string
	for _, s := range ss {
		out = append(out, s.Service)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeServiceAddr offers a service, then its instances' addresses.
func (a *app) completeServiceAddr(cmd *cobra.Command, argv []string, s string) ([]string, cobra.ShellCompDirective) {
	if len(argv) == 0 {
		return a.completeServices(cmd, argv, s)
	}
	if len(argv) > 1 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := a.admin()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	is, err := c.Instances(ctx, argv[0], "provider")
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []string
	for _, i := range is {
		out = append(out, i.Instance.Addr)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// loadRow is one provider in `top`.
type loadRow struct {
	Service string  `json:"service"`
	Addr    string  `json:"addr"`
	Enabled bool    `json:"enabled"`
	Live    int32   `json:"live"`
	Total   int32   `json:"total"`
	Idle    int32   `json:"idle"`
	Busy    float64 `json:"busy_percent"`
}

func (a *app) topCmd() *cobra.Command {
	var interval time.Duration
	var count int
	var all bool
	cmd := &cobra.Command{
		Use:   "top [SERVICE...]",
		Short: "Live load of every loader (or the services named), refreshed",
		Long: `top shows each provider's load as it reports it to polaris: total slots (licence),
idle slots, busy share, live and enabled, refreshed every --interval until Ctrl-C (or
--count refreshes). On a terminal the screen is redrawn. Without SERVICE it shows every
capability's loaders (--all adds the suite's own services: atom, lbclient, ...).`,
		Example:           "  asectl top\n  asectl top echo --interval 1s\n  asectl top --count 1 -o json",
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, argv []string) error {
			if interval <= 0 {
				return usagef("--interval %s: want a positive duration", interval)
			}
			c, err := a.admin()
			if err != nil {
				return err
			}
			tty := isTerminal(a.io.Out)
			for i := 0; count <= 0 || i < count; i++ {
				if i > 0 {
					t := time.NewTimer(interval)
					select {
					case <-cmd.Context().Done():
						t.Stop()
						return nil
					case <-t.C:
					}
				}
				rows, err := topRows(cmd.Context(), c, argv, all)
				if err != nil {
					return err
				}
				if tty && a.output == "table" {
					fmt.Fprint(a.io.Out, "\033[H\033[2J")
				}
				err = a.print(map[string]any{"time": time.Now().UTC().Format(time.RFC3339), "loaders": rows}, func(w io.Writer) {
					fmt.Fprintf(w, "%s  %d providers\n", time.Now().Format("15:04:05"), len(rows))
					row(w, "SERVICE", "ADDR", "LIVE", "ENABLED", "TOTAL", "IDLE", "BUSY")
					for _, r := range rows {
						row(w, r.Service, r.Addr, r.Live, r.Enabled, r.Total, r.Idle, fmt.Sprintf("%.0f%%", r.Busy))
					}
				})
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "refresh interval")
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many refreshes (0: until Ctrl-C)")
	cmd.Flags().BoolVar(&all, "all", false, "also the suite's own services (atom, lbclient, webgate, polaris)")
	return cmd
}

// suiteServices register themselves with polaris beside the capabilities' loaders.
var suiteServices = map[string]bool{"atom": true, "lbclient": true, "webgate": true, "polaris": true}

// topRows reads every provider of services (all capabilities when empty; with all, the
// suite's services too), busiest first.
func topRows(ctx context.Context, c *admin.Client, services []string, all bool) ([]loadRow, error) {
	if len(services) == 0 {
		ss, err := c.Services(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			if s.Providers > 0 && (all || !suiteServices[s.Service]) {
				services = append(services, s.Service)
			}
		}
	}
	rows := []loadRow{}
	for _, s := range services {
		is, err := c.Instances(ctx, s, "provider")
		if err != nil {
			return nil, err
		}
		for _, i := range is {
			r := loadRow{Service: s, Addr: i.Instance.Addr, Enabled: i.Admin.Enabled, Live: i.Load.Live, Total: i.Load.Total, Idle: i.Load.Idle}
			if r.Total > 0 {
				r.Busy = 100 * float64(r.Total-max(r.Idle, 0)) / float64(r.Total)
			}
			rows = append(rows, r)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Busy != rows[j].Busy {
			return rows[i].Busy > rows[j].Busy
		}
		return rows[i].Service+rows[i].Addr < rows[j].Service+rows[j].Addr
	})
	return rows, nil
}

// isTerminal tells whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
