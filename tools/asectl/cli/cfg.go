package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/athenaserving/asf/tools/asectl/internal/admin"
	"github.com/spf13/cobra"
)

const keyHelp = "KEY is project/group/service/version/file, or service/version/file in project asf, group default."

func parseKey(s string) (admin.Key, error) {
	k, err := admin.ParseKey(s)
	if err != nil {
		return k, usageError{err}
	}
	return k, nil
}

// keyAdmin parses a config key and returns it with the admin API's client.
func (a *app) keyAdmin(key string) (admin.Key, *admin.Client, error) {
	k, err := parseKey(key)
	if err != nil {
		return k, nil, err
	}
	c, err := a.admin()
	return k, c, err
}

// readInput reads path, or standard input for "-".
func readInput(in io.Reader, path string) ([]byte, error) {
	if path == "-" {
		if in == nil {
			return nil, fmt.Errorf("no standard input")
		}
		return io.ReadAll(in)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

func (a *app) cfgCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "cfg",
		Aliases: []string{"config"},
		Short:   "Config files in polaris: list, get, push, diff, history, rollback, gray",
		Long:    "Config files in polaris's config center, each with its revision history.\n" + keyHelp,
		Example: "  asectl cfg ls --service atom\n  asectl cfg push atom/v1/atom.toml atom.toml --comment 'more workers'\n  asectl cfg diff atom/v1/atom.toml",
	}
	var filter admin.Key
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List config files with their current revision and gray groups",
		Example: "  asectl cfg ls --project asf --service webgate",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.admin()
			if err != nil {
				return err
			}
			fs, err := c.Files(cmd.Context(), filter)
			if err != nil {
				return err
			}
			return a.print(map[string]any{"files": fs}, func(w io.Writer) {
				row(w, "KEY", "CURRENT", "REVISIONS", "GRAY", "UPDATED")
				for _, f := range fs {
					gray := "-"
					if len(f.Gray) > 0 {
						gray = fmt.Sprint(f.Gray)
					}
					row(w, f.Key, f.Current, f.Revisions, gray, dash(f.Updated))
				}
			})
		},
	}
	ls.Flags().StringVar(&filter.Project, "project", "", "only this project")
	ls.Flags().StringVar(&filter.Group, "group", "", "only this group")
	ls.Flags().StringVar(&filter.Service, "service", "", "only this service")
	ls.Flags().StringVar(&filter.Version, "version", "", "only this version")

	var gray string
	var rev int64
	get := &cobra.Command{
		Use:     "get KEY",
		Short:   "Print a file's current content (or a gray group's, or a revision's)",
		Long:    "get prints the content; -o json|yaml prints the revision with its metadata.\n" + keyHelp,
		Example: "  asectl cfg get atom/v1/atom.toml\n  asectl cfg get atom/v1/atom.toml --revision 2\n  asectl cfg get atom/v1/atom.toml --gray canary",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			k, c, err := a.keyAdmin(argv[0])
			if err != nil {
				return err
			}
			var f admin.File
			if rev > 0 {
				f, err = c.Revision(cmd.Context(), k, rev)
			} else {
				f, err = c.Get(cmd.Context(), k, gray)
			}
			if err != nil {
				return err
			}
			return a.print(f, func(w io.Writer) { _, _ = w.Write(f.Bytes()) })
		},
	}
	get.Flags().StringVar(&gray, "gray", "", "the revision gray group GROUP receives")
	get.Flags().Int64Var(&rev, "revision", 0, "a revision number instead of the current one")

	push := a.pushCmd("push KEY FILE", "Push FILE (- is stdin) as a new revision of KEY",
		"  asectl cfg push atom/v1/atom.toml atom.toml --comment 'more workers'\n  echo 'workers = 8' | asectl cfg push atom/v1/atom.toml -", false)
	grayCmd := a.pushCmd("gray KEY FILE --group GROUP", "Push FILE as the revision only gray group GROUP receives (a canary)",
		"  asectl cfg gray atom/v1/atom.toml atom-new.toml --group canary", true)

	var from, to int64
	diff := &cobra.Command{
		Use:     "diff KEY",
		Short:   "Show what changed between two revisions (default: the current one and the one before)",
		Long:    "diff prints a unified diff of two revisions of KEY.\n" + keyHelp,
		Example: "  asectl cfg diff atom/v1/atom.toml\n  asectl cfg diff atom/v1/atom.toml --from 1 --to 3",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			k, c, err := a.keyAdmin(argv[0])
			if err != nil {
				return err
			}
			if to <= 0 || from <= 0 {
				cur, err := c.Get(cmd.Context(), k, "")
				if err != nil {
					return err
				}
				if to <= 0 {
					to = cur.Revision
				}
				if from <= 0 {
					from = to - 1
				}
				if from <= 0 {
					return fmt.Errorf("%s has one revision only: nothing to compare", k)
				}
			}
			d, err := c.Diff(cmd.Context(), k, from, to)
			if err != nil {
				return err
			}
			return a.print(d, func(w io.Writer) {
				fmt.Fprintf(w, "--- %s revision %d\n+++ %s revision %d (+%d -%d)\n%s", k, d.From, k, d.To, d.Added, d.Removed, d.Unified)
			})
		},
	}
	diff.Flags().Int64Var(&from, "from", 0, "older revision (default: the one before --to)")
	diff.Flags().Int64Var(&to, "to", 0, "newer revision (default: the current one)")

	history := &cobra.Command{
		Use:     "history KEY",
		Short:   "List every revision of a file",
		Long:    "history lists the revisions polaris keeps of KEY.\n" + keyHelp,
		Example: "  asectl cfg history atom/v1/atom.toml",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			k, c, err := a.keyAdmin(argv[0])
			if err != nil {
				return err
			}
			h, err := c.History(cmd.Context(), k)
			if err != nil {
				return err
			}
			return a.print(h, func(w io.Writer) {
				row(w, "REVISION", "CREATED", "GRAY GROUP", "CURRENT", "COMMENT")
				for _, f := range h.Revisions {
					cur := ""
					if f.Revision == h.Current {
						cur = "*"
					}
					row(w, f.Revision, f.Created.Format("2006-01-02 15:04:05"), dash(f.GrayGroup), cur, dash(f.Comment))
				}
			})
		},
	}
	rollback := &cobra.Command{
		Use:     "rollback KEY REVISION",
		Short:   "Push an older revision's content again, as a new revision",
		Long:    "rollback makes REVISION's content current by pushing it again; subscribers are notified as for any push.\n" + keyHelp,
		Example: "  asectl cfg rollback atom/v1/atom.toml 1",
		Args:    args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			k, err := parseKey(argv[0])
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(argv[1], 10, 64)
			if err != nil || n <= 0 {
				return usagef("revision %q: want a revision number (asectl cfg history %s lists them)", argv[1], argv[0])
			}
			c, err := a.admin()
			if err != nil {
				return err
			}
			f, err := c.Rollback(cmd.Context(), k, n)
			if err != nil {
				return err
			}
			return a.print(f, func(w io.Writer) { fmt.Fprintf(w, "%s: revision %d holds revision %d's content\n", k, f.Revision, n) })
		},
	}
	cmd.AddCommand(ls, get, push, diff, history, rollback, grayCmd)
	return cmd
}

// pushCmd is `cfg push`, or with gray `cfg gray` (--group required).
func (a *app) pushCmd(use, short, example string, gray bool) *cobra.Command {
	var comment, group string
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    short + ".\n" + keyHelp,
		Example: example,
		Args:    args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			k, err := parseKey(argv[0])
			if err != nil {
				return err
			}
			if gray && group == "" {
				return usagef("gray needs --group GROUP: the instances labelled gray=GROUP receive the revision")
			}
			content, err := readInput(a.io.In, argv[1])
			if err != nil {
				return err
			}
			c, err := a.admin()
			if err != nil {
				return err
			}
			f, err := c.Push(cmd.Context(), k, content, comment, group)
			if err != nil {
				return err
			}
			f.Content = nil // the pushed content is the input
			return a.print(f, func(w io.Writer) {
				if group != "" {
					fmt.Fprintf(w, "%s: revision %d pushed for gray group %s\n", k, f.Revision, group)
					return
				}
				fmt.Fprintf(w, "%s: revision %d pushed\n", k, f.Revision)
			})
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "what the revision changes (kept in the history)")
	if gray {
		cmd.Flags().StringVar(&group, "group", "", "gray group receiving the revision (instances labelled gray=GROUP)")
	}
	return cmd
}
