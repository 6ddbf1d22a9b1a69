// Package capmeta turns capability schemas (libs/capability) into the convert.Meta that
// atom's conversion and routing read, one Meta per schema revision.
//
//	reg := capability.NewRegistry()              // kept current by a capwatch.Watcher
//	metas := capmeta.New(reg)
//	router := route.New(lb, loaders, route.Options{Meta: metas.Meta})
package capmeta

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/services/atom/convert"
)

// Source looks up the current schema of a capability (*capability.Registry).
type Source interface {
	Get(id string) (*capability.Schema, bool)
}

// Cache hands out the Meta of each capability's current schema, converting a schema
// once per revision. It is safe for concurrent use.
type Cache struct {
	src Source

	mu      sync.Mutex
	entries map[string]entry
}

type entry struct {
	sch  *capability.Schema
	meta *convert.Meta
}

// New returns a Cache over src.
func New(src Source) *Cache { return &Cache{src: src, entries: map[string]entry{}} }

// Meta returns the Meta of capability, or nil (defaults) when it has no schema. A schema
// whose atom extras do not parse also yields the accessors' part with default extras.
func (c *Cache) Meta(capability string) *convert.Meta {
	sch, ok := c.src.Get(capability)
	if !ok {
		c.mu.Lock()
		delete(c.entries, capability)
		c.mu.Unlock()
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[capability]; ok && e.sch == sch {
		return e.meta
	}
	m, _ := FromSchema(sch) // the error only concerns the extras; m holds the rest
	c.entries[capability] = entry{sch: sch, meta: m}
	return m
}

// FromSchema builds the Meta of sch: declared inputs and accepts with their data types,
// the output attribute types of schemaoutput, the once, session and read timeouts, and
// the atom extras of the meta object (Extras). On an extras error it returns the Meta
// without them, and the error.
func FromSchema(sch *capability.Schema) (*convert.Meta, error) {
	m := &convert.Meta{
		Inputs:         map[string]string{},
		Accepts:        map[string]string{},
		OnceTimeout:    sch.OnceTimeout(),
		SessionTimeout: sch.SessionTimeout(),
		ReadTimeout:    sch.ReadTimeout(),
		OutputAttrType: func(output, key string) string { return attrTypeName(sch.OutputAttrType(output, key)) },
	}
	for _, name := range sch.Inputs() {
		t, _ := sch.InputType(name)
		m.Inputs[name] = string(t)
	}
	for _, name := range sch.Accepts() {
		t, _ := sch.AcceptType(name)
		m.Accepts[name] = string(t)
	}
	x, err := Extras(sch.Raw())
	if err != nil {
		return m, fmt.Errorf("capability %s: %w", sch.ID(), err)
	}
	m.Service, m.FirstResultTimeout = x.Engine, x.FirstResultTimeout
	return m, nil
}

// attrTypeName names an attribute type for convert.TypeAttr. schemaoutput's "integer"
// and "number" both come as AttrNumber, so both are typed as "number".
func attrTypeName(t capability.AttrType) string {
	switch t {
	case capability.AttrNumber:
		return "number"
	case capability.AttrBool:
		return "boolean"
	case capability.AttrString:
		return "string"
	}
	return ""
}

// Extra is what atom reads from a schema's meta object beyond libs/capability's accessors.
type Extra struct {
	// Engine is meta.engine: the loader service serving the capability ("" = the capability id).
	Engine string
	// FirstResultTimeout is meta.first_result_timeout in seconds (number or numeric string).
	FirstResultTimeout time.Duration
}

// Extras parses meta.engine and meta.first_result_timeout from a whole schema document.
// Absent or null keys give zero values.
func Extras(doc []byte) (Extra, error) {
	var w struct {
		Meta struct {
			Engine      json.RawMessage `json:"engine"`
			FirstResult json.RawMessage `json:"first_result_timeout"`
		} `json:"meta"`
	}
	var x Extra
	if err := json.Unmarshal(doc, &w); err != nil {
		return x, fmt.Errorf("schema: %w", err)
	}
	if raw := w.Meta.Engine; !isNull(raw) {
		if err := json.Unmarshal(raw, &x.Engine); err != nil {
			return x, fmt.Errorf("meta.engine must be a string: %w", err)
		}
		if strings.ContainsAny(x.Engine, " /") {
			return Extra{}, fmt.Errorf("meta.engine %q is not a service name", x.Engine)
		}
	}
	if raw := w.Meta.FirstResult; !isNull(raw) {
		d, err := seconds(raw)
		if err != nil {
			return Extra{Engine: x.Engine}, fmt.Errorf("meta.first_result_timeout: %w", err)
		}
		x.FirstResultTimeout = d
	}
	return x, nil
}

// seconds reads a non-negative number of seconds given as a JSON number or numeric string.
func seconds(raw json.RawMessage) (time.Duration, error) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 86400*365 {
		return 0, fmt.Errorf("%s is not a number of seconds", raw)
	}
	return time.Duration(f * float64(time.Second)), nil
}

func isNull(raw json.RawMessage) bool {
	t := strings.TrimSpace(string(raw))
	return t == "" || t == "null"
}
