package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/tools/asectl/internal/admin"
	"github.com/spf13/cobra"
)

// schemaKey is where capability schemas live: asf/default/capabilities/v1/schema_<id>.json.
func schemaKey(id string) admin.Key {
	return admin.Key{Project: admin.DefaultProject, Group: admin.DefaultGroup, Service: "capabilities", Version: "v1", File: "schema_" + id + ".json"}
}

// schemaView is what validate and push report of a schema.
type schemaView struct {
	File     string   `json:"file"`
	ID       string   `json:"service_id"`
	Route    string   `json:"route"`
	WebAPI   string   `json:"webapi_route,omitempty"`
	Inputs   []string `json:"inputs"`
	Outputs  []string `json:"outputs"`
	Revision int64    `json:"revision,omitempty"`
}

// validateSchema compiles file's schema as webgate and atom do.
func (a *app) validateSchema(file string) (*capability.Schema, []byte, error) {
	b, err := readInput(a.io.In, file)
	if err != nil {
		return nil, nil, err
	}
	s, err := capability.Parse(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, b, nil
}

func viewOf(file string, s *capability.Schema) schemaView {
	v := schemaView{File: file, ID: s.ID(), Route: s.Route(), Inputs: s.Inputs(), Outputs: s.Accepts()}
	if w := s.WebAPI(); w != nil {
		v.WebAPI = w.Route()
	}
	return v
}

func schemaTable(vs []schemaView) func(io.Writer) {
	return func(w io.Writer) {
		row(w, "FILE", "SERVICE", "ROUTE", "INPUTS", "OUTPUTS", "REVISION")
		for _, v := range vs {
			rev := "-"
			if v.Revision > 0 {
				rev = fmt.Sprint(v.Revision)
			}
			row(w, v.File, v.ID, v.Route, dash(strings.Join(v.Inputs, ",")), dash(strings.Join(v.Outputs, ",")), rev)
		}
	}
}

func (a *app) schemaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "schema",
		Short:   "Capability schemas: validate, push, get",
		Example: "  asectl schema validate schema_greeter.json\n  asectl schema push schema_greeter.json\n  asectl schema get greeter",
	}
	validate := &cobra.Command{
		Use:     "validate FILE...",
		Short:   "Check schema files as webgate and atom load them (no polaris needed)",
		Example: "  asectl schema validate schema_greeter.json",
		Args:    args(cobra.MinimumNArgs(1)),
		RunE: func(_ *cobra.Command, argv []string) error {
			var vs []schemaView
			for _, f := range argv {
				s, _, err := a.validateSchema(f)
				if err != nil {
					return err
				}
				vs = append(vs, viewOf(f, s))
			}
			return a.print(map[string]any{"schemas": vs}, schemaTable(vs))
		},
	}
	var comment string
	push := &cobra.Command{
		Use:   "push FILE...",
		Short: "Validate schema files and publish them to polaris",
		Long: `push validates each file, then publishes it as asf/default/capabilities/v1/schema_<serviceId>.json,
where webgate and atom pick it up (hot reload).`,
		Example: "  asectl schema push schema_greeter.json --comment 'first version'",
		Args:    args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.admin()
			if err != nil {
				return err
			}
			var vs []schemaView
			for _, f := range argv {
				s, b, err := a.validateSchema(f)
				if err != nil {
					return err
				}
				pushed, err := c.Push(cmd.Context(), schemaKey(s.ID()), b, comment, "")
				if err != nil {
					return fmt.Errorf("push %s: %w", f, err)
				}
				v := viewOf(f, s)
				v.Revision = pushed.Revision
				vs = append(vs, v)
			}
			return a.print(map[string]any{"schemas": vs}, schemaTable(vs))
		},
	}
	push.Flags().StringVar(&comment, "comment", "pushed by asectl", "comment of the new revisions")
	get := &cobra.Command{
		Use:               "get SERVICE",
		Short:             "Print a capability's schema as polaris holds it",
		Example:           "  asectl schema get greeter > schema_greeter.json",
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.admin()
			if err != nil {
				return err
			}
			f, err := c.Get(cmd.Context(), schemaKey(argv[0]), "")
			if admin.IsNotFound(err) {
				return fmt.Errorf("no schema for %s in polaris (asectl schema push schema_%s.json publishes one): %w", argv[0], argv[0], err)
			}
			if err != nil {
				return err
			}
			return a.print(f, func(w io.Writer) { _, _ = w.Write(f.Bytes()) })
		},
	}
	cmd.AddCommand(validate, push, get)
	return cmd
}
