package mapping

import (
	"encoding/json"
	"fmt"
)

// Rules is a compiled list of mapping blocks between two documents whose top-level keys
// (roots) the caller chooses: the same rule language as a "webapi" block, for other
// conversions (the loader's forward engine maps engine requests to a third-party API's
// body and its answers back). It is immutable and safe for concurrent use.
//
//	r, err := mapping.CompileRules(raw, "request.mapping",
//	    []string{"header", "parameter", "payload"}, []string{"body", "query", "headers"})
//	out := map[string]any{}
//	r.Apply(doc, out)
type Rules struct {
	rules []rule
}

// CompileRules compiles raw, one block or a list of blocks
// ([{"data_type": ..., "rule": [{"src"|"value", "dst"}]}]), whose src paths start with
// one of src and dst paths with one of dst. where prefixes the location in a refusal
// (*Error). When one side's roots include "payload", a rule touching
// $.payload.<item>.<data field> on that side must name its block's data_type.
func CompileRules(raw []byte, where string, src, dst []string) (*Rules, error) {
	var bs blocks
	if err := json.Unmarshal(raw, &bs); err != nil {
		return nil, fmt.Errorf("%s: %v", where, err)
	}
	payloadDst := false
	for _, r := range dst {
		if r == "payload" {
			payloadDst = true
		}
	}
	rs, err := compileBlocks(bs, where, src, dst, payloadDst)
	if err != nil {
		return nil, err
	}
	return &Rules{rules: rs}, nil
}

// Len is the number of rules.
func (r *Rules) Len() int {
	if r == nil {
		return 0
	}
	return len(r.rules)
}

// Apply runs the rules in order: each copies the value at its src in doc (skipped when
// absent) or its literal value to its dst in out, creating objects on the way.
func (r *Rules) Apply(doc, out map[string]any) {
	if r == nil {
		return
	}
	apply(r.rules, doc, out)
}
