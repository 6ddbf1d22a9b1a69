package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"
)

// print writes v as JSON or YAML with -o json|yaml, else the table that table writes
// (tab-separated columns, aligned).
func (a *app) print(v any, table func(w io.Writer)) error {
	switch a.output {
	case "json":
		enc := json.NewEncoder(a.io.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := json.Marshal(v) // the JSON names, also in YAML
		if err != nil {
			return err
		}
		var generic any
		if err := json.Unmarshal(b, &generic); err != nil {
			return err
		}
		y, err := yaml.Marshal(generic)
		if err != nil {
			return err
		}
		_, err = a.io.Out.Write(y)
		return err
	}
	tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// row writes one tab-separated table row.
func row(w io.Writer, cols ...any) {
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, c)
	}
	fmt.Fprintln(w)
}
