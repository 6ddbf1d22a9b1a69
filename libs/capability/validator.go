package capability

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// The compiled validator: schemainput compiled for the subset of JSON Schema (draft
// 2020-12, the library's default) that capability schemas use, deciding exactly as
// github.com/santhosh-tekuri/jsonschema/v6 does. A schema with any keyword outside the subset
// keeps the library (Parse decides per schema). Errors are built from the library's own
// error kinds, so their text is the library's.

// typeSet is a set of JSON types, in the order the library names them.
type typeSet uint8

const (
	tNull typeSet = 1 << iota
	tBoolean
	tNumber
	tInteger
	tString
	tArray
	tObject
)

var jsonTypeNames = [...]string{"null", "boolean", "number", "integer", "string", "array", "object"}

func typeFromName(s string) typeSet {
	for i, n := range jsonTypeNames {
		if n == s {
			return 1 << i
		}
	}
	return 0
}

// names lists the types of t as the library's Types.ToStrings does.
func (t typeSet) names() []string {
	var out []string
	for i, n := range jsonTypeNames {
		if t&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func (t typeSet) name() string {
	for i, n := range jsonTypeNames {
		if t == 1<<i {
			return n
		}
	}
	return ""
}

// bound is a numeric keyword's value: the library's big.Rat, and the literal read as the
// validator reads numbers (num).
type bound struct {
	r *big.Rat
	n num
}

func newBound(v any) *bound {
	r := numVal(v)
	if r == nil {
		return nil
	}
	return &bound{r: r, n: parseNum(string(v.(json.Number)))}
}

// limit is a count keyword (minLength, maxItems, ...) when set.
type limit struct {
	n   int
	set bool
}

// below reports whether count breaks a minimum limit, above a maximum one.
func (l limit) below(count int) bool { return l.set && count < l.n }
func (l limit) above(count int) bool { return l.set && count > l.n }

// node is one compiled (sub)schema.
type node struct {
	boolean int8 // 1: the schema true, -1: false, 0: a schema object

	types     typeSet
	typeNames []string

	hasConst  bool
	constV    any
	hasEnum   bool
	enum      []any
	enumTypes typeSet

	minimum, maximum, exMinimum, exMaximum, multipleOf *bound

	minLen, maxLen limit
	pattern        *regexp.Regexp

	minItems, maxItems limit
	items              *node

	minProps, maxProps limit
	required           []string
	props              map[string]*node
	addl               *node // additionalProperties as a schema
	addlFalse          bool  // additionalProperties: false

	allOf, anyOf, oneOf []*node
	not                 *node

	// streamable: the byte walker evaluates this node itself (see walk.go); otherwise
	// it decodes the value and evaluates the tree.
	streamable bool
	// members: the node constrains an object's members (properties, required,
	// additionalProperties).
	members bool
}

// annotations are keywords the library compiles without asserting them in its default
// configuration (format and content assertions off, draft 2020-12), and $defs, whose
// schemas apply only through $ref.
var annotations = map[string]bool{
	"title": true, "description": true, "default": true, "examples": true, "$comment": true,
	"deprecated": true, "readOnly": true, "writeOnly": true, "format": true,
	"contentEncoding": true, "contentMediaType": true, "contentSchema": true,
	"$defs": true, "definitions": true,
}

// compileNode compiles a schema decoded with DecodeJSON. ok is false when the schema uses
// a keyword outside the compiled subset; the document must already have compiled with the
// library (which checks it against the meta-schema).
func compileNode(v any) (n *node, ok bool) {
	switch s := v.(type) {
	case bool:
		if s {
			return &node{boolean: 1}, true
		}
		return &node{boolean: -1}, true
	case map[string]any:
		n = &node{}
		for k, kv := range s {
			if !n.keyword(k, kv) {
				return nil, false
			}
		}
		n.finish()
		return n, true
	}
	return nil, false
}

// keyword compiles one keyword of a schema object, reading values as the library does.
func (n *node) keyword(k string, v any) bool {
	switch k {
	case "type":
		for _, name := range typeList(v) {
			n.types |= typeFromName(name)
		}
		n.typeNames = n.types.names()
	case "enum":
		arr, ok := v.([]any)
		if !ok {
			return true
		}
		n.hasEnum, n.enum = true, arr
		for _, it := range arr {
			n.enumTypes |= typeOfValue(it)
		}
	case "const":
		n.hasConst, n.constV = true, v
	case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf":
		fields := map[string]**bound{"minimum": &n.minimum, "maximum": &n.maximum,
			"exclusiveMinimum": &n.exMinimum, "exclusiveMaximum": &n.exMaximum, "multipleOf": &n.multipleOf}
		*fields[k] = newBound(v)
	case "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties":
		fields := map[string]*limit{"minLength": &n.minLen, "maxLength": &n.maxLen, "minItems": &n.minItems,
			"maxItems": &n.maxItems, "minProperties": &n.minProps, "maxProperties": &n.maxProps}
		l := fields[k]
		l.n, l.set = intVal(v)
	case "pattern":
		s, ok := v.(string)
		if !ok {
			return true
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return false
		}
		n.pattern = re
	case "required":
		arr, _ := v.([]any)
		for _, it := range arr {
			if s, ok := it.(string); ok {
				n.required = append(n.required, s)
			}
		}
	case "properties":
		m, ok := v.(map[string]any)
		if !ok {
			return true
		}
		n.props = make(map[string]*node, len(m))
		for name, sv := range m {
			sub, ok := compileNode(sv)
			if !ok {
				return false
			}
			n.props[name] = sub
		}
	case "additionalProperties":
		if b, ok := v.(bool); ok {
			n.addlFalse = !b
			return true
		}
		sub, ok := compileNode(v)
		n.addl = sub
		return ok
	case "items":
		sub, ok := compileNode(v)
		n.items = sub
		return ok
	case "allOf", "anyOf", "oneOf":
		arr, ok := v.([]any)
		if !ok {
			return false
		}
		subs := make([]*node, 0, len(arr))
		for _, sv := range arr {
			sub, ok := compileNode(sv)
			if !ok {
				return false
			}
			subs = append(subs, sub)
		}
		switch k {
		case "allOf":
			n.allOf = subs
		case "anyOf":
			n.anyOf = subs
		default:
			n.oneOf = subs
		}
	case "not":
		sub, ok := compileNode(v)
		n.not = sub
		return ok
	default:
		return annotations[k]
	}
	return true
}

// finish derives what the walker needs to know of n.
func (n *node) finish() {
	n.members = n.props != nil || len(n.required) > 0 || n.addl != nil || n.addlFalse
	n.streamable = !n.minProps.set && !n.maxProps.set && n.not == nil && len(n.oneOf) == 0 &&
		len(n.required) <= 64 && scalarOnly(n.hasConst, []any{n.constV}) && scalarOnly(n.hasEnum, n.enum)
}

// scalarOnly reports whether none of vals (when set) is an object or array.
func scalarOnly(set bool, vals []any) bool {
	if !set {
		return true
	}
	for _, v := range vals {
		switch v.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

func typeList(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// numVal reads a numeric keyword as the library does.
func numVal(v any) *big.Rat {
	n, ok := v.(json.Number)
	if !ok {
		return nil
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return nil
	}
	return r
}

// intVal reads an integer keyword as the library does (including its conversion).
func intVal(v any) (int, bool) {
	if r := numVal(v); r != nil && r.IsInt() {
		return int(r.Num().Int64()), true
	}
	return 0, false
}

// typeOfValue is the JSON type of a decoded value, 0 for a Go type the compiled
// validator leaves to the library.
func typeOfValue(v any) typeSet {
	switch v.(type) {
	case nil:
		return tNull
	case bool:
		return tBoolean
	case json.Number:
		return tNumber
	case string:
		return tString
	case []any:
		return tArray
	case map[string]any:
		return tObject
	}
	return 0
}

// equalJSON is the library's equals on decoded values; bad reports a Go type the library
// would answer with an error of its own.
func equalJSON(v1, v2 any) (eq, bad bool) {
	switch a := v1.(type) {
	case map[string]any:
		b, ok := v2.(map[string]any)
		if !ok || len(a) != len(b) {
			return false, false
		}
		for k, x := range a {
			y, ok := b[k]
			if !ok {
				return false, false
			}
			if eq, bad := equalJSON(x, y); !eq || bad {
				return eq, bad
			}
		}
		return true, false
	case []any:
		b, ok := v2.([]any)
		if !ok || len(a) != len(b) {
			return false, false
		}
		for i := range a {
			if eq, bad := equalJSON(a[i], b[i]); !eq || bad {
				return eq, bad
			}
		}
		return true, false
	case nil:
		return v2 == nil, false
	case bool:
		b, ok := v2.(bool)
		return ok && a == b, false
	case string:
		b, ok := v2.(string)
		return ok && a == b, false
	case json.Number:
		b, ok := v2.(json.Number)
		if !ok {
			return false, typeOfValue(v2) == 0
		}
		return numEqual(string(a), string(b)), false
	}
	return false, true
}

// scalar is a string, number, boolean or null value: s holds a string's text or a
// number's literal; runes is a string's rune count when the caller knows it, else -1.
type scalar struct {
	t     typeSet
	s     string
	b     bool
	runes int
}

// value is p as the decoder gives it (what the library's errors show).
func (p *scalar) value() any {
	switch p.t {
	case tString:
		return p.s
	case tNumber:
		return json.Number(p.s)
	case tBoolean:
		return p.b
	}
	return nil
}

// equal compares p with a schema value (const or an enum item).
func (p *scalar) equal(v any) bool {
	switch x := v.(type) {
	case nil:
		return p.t == tNull
	case bool:
		return p.t == tBoolean && p.b == x
	case string:
		return p.t == tString && p.s == x
	case json.Number:
		return p.t == tNumber && numEqual(p.s, string(x))
	}
	return false
}

// errFailed is the decide mode's failure: it carries no details.
var errFailed = &jsonschema.ValidationError{}

// evaluator validates decoded values against compiled nodes. In decide mode (explain
// false) it stops at the first failure and allocates nothing; in explain mode it builds the
// library's error tree, in the library's order (object members sorted by name).
type evaluator struct {
	explain bool
	loc     []string
	// bad: a value of a Go type the compiled validator does not know; the library decides.
	bad bool
	// outOfRange: a number big.Rat cannot hold met a numeric keyword (the library panics
	// there); the document is refused. rangeMsg words it in explain mode.
	outOfRange bool
	rangeMsg   string
}

func (e *evaluator) fail(k jsonschema.ErrorKind) *jsonschema.ValidationError {
	if !e.explain {
		return errFailed
	}
	return &jsonschema.ValidationError{InstanceLocation: slices.Clone(e.loc), ErrorKind: k}
}

// add records err among errs; it reports whether evaluation stops (decide mode).
func (e *evaluator) add(errs *[]*jsonschema.ValidationError, err *jsonschema.ValidationError) bool {
	if err == nil {
		return false
	}
	if !e.explain {
		return true
	}
	*errs = append(*errs, err)
	return false
}

func (e *evaluator) push(tok string) {
	if e.explain {
		e.loc = append(e.loc, tok)
	}
}

func (e *evaluator) pop() {
	if e.explain {
		e.loc = e.loc[:len(e.loc)-1]
	}
}

// group is the library's result of one schema's errors.
func (e *evaluator) group(errs []*jsonschema.ValidationError) *jsonschema.ValidationError {
	switch {
	case len(errs) == 0:
		return nil
	case len(errs) == 1 || !e.explain:
		return errs[0]
	}
	g := e.fail(&kind.Group{})
	g.Causes = errs
	return g
}

// outRange refuses a number big.Rat cannot hold.
func (e *evaluator) outRange(lit string) *jsonschema.ValidationError {
	e.outOfRange = true
	if e.explain && e.rangeMsg == "" {
		e.rangeMsg = fmt.Sprintf("at %s: number %s is out of range", quotePtr(e.loc), lit)
	}
	return errFailed
}

// check validates v against n.
func (e *evaluator) check(n *node, v any) *jsonschema.ValidationError {
	switch n.boolean {
	case 1:
		return nil
	case -1:
		return e.fail(&kind.FalseSchema{})
	}
	var errs []*jsonschema.ValidationError
	switch x := v.(type) {
	case map[string]any:
		if err := e.compositeHead(n, tObject, v); err != nil {
			return err
		}
		if e.object(n, x, &errs) {
			return errFailed
		}
	case []any:
		if err := e.compositeHead(n, tArray, v); err != nil {
			return err
		}
		if e.array(n, x, &errs) {
			return errFailed
		}
	default:
		p := scalar{runes: -1}
		switch x := v.(type) {
		case nil:
			p.t = tNull
		case bool:
			p.t, p.b = tBoolean, x
		case string:
			p.t, p.s = tString, x
		case json.Number:
			p.t, p.s = tNumber, string(x)
		default:
			e.bad = true
			return errFailed
		}
		if err := e.scalarHead(n, &p); err != nil {
			return err
		}
		if e.scalarRules(n, &p, &errs) {
			return errFailed
		}
	}
	if e.cond(n, v, &errs) {
		return errFailed
	}
	return e.group(errs)
}

// compositeHead checks type, const and enum of an object or array.
func (e *evaluator) compositeHead(n *node, t typeSet, v any) *jsonschema.ValidationError {
	if n.types != 0 && n.types&t == 0 {
		return e.fail(&kind.Type{Got: t.name(), Want: n.typeNames})
	}
	if n.hasConst {
		eq, bad := equalJSON(v, n.constV)
		if bad {
			e.bad = true
			return errFailed
		}
		if !eq {
			return e.fail(&kind.Const{Got: v, Want: n.constV})
		}
	}
	if n.hasEnum {
		matched := false
		if n.enumTypes&t != 0 {
			for _, it := range n.enum {
				eq, bad := equalJSON(v, it)
				if bad {
					e.bad = true
					return errFailed
				}
				if eq {
					matched = true
					break
				}
			}
		}
		if !matched {
			return e.fail(&kind.Enum{Got: v, Want: n.enum})
		}
	}
	return nil
}

// scalarHead checks type, const and enum of a scalar: the keywords whose failure ends the
// schema's evaluation.
func (e *evaluator) scalarHead(n *node, p *scalar) *jsonschema.ValidationError {
	if n.types != 0 && n.types&p.t == 0 {
		matched := false
		if n.types&tInteger != 0 && p.t == tNumber {
			x := parseNum(p.s)
			matched = x.isInteger()
		}
		if !matched {
			return e.fail(&kind.Type{Got: p.t.name(), Want: n.typeNames})
		}
	}
	if n.hasConst && !p.equal(n.constV) {
		return e.fail(&kind.Const{Got: p.value(), Want: n.constV})
	}
	if n.hasEnum {
		matched := false
		if n.enumTypes&p.t != 0 {
			for _, it := range n.enum {
				if p.equal(it) {
					matched = true
					break
				}
			}
		}
		if !matched {
			return e.fail(&kind.Enum{Got: p.value(), Want: n.enum})
		}
	}
	return nil
}

// scalarRules checks the string and number keywords; it reports whether evaluation stops.
func (e *evaluator) scalarRules(n *node, p *scalar, errs *[]*jsonschema.ValidationError) bool {
	switch p.t {
	case tString:
		if n.minLen.set || n.maxLen.set {
			l := p.runes
			if l < 0 {
				l = utf8.RuneCountInString(p.s)
			}
			if n.minLen.below(l) && e.add(errs, e.fail(&kind.MinLength{Got: l, Want: n.minLen.n})) {
				return true
			}
			if n.maxLen.above(l) && e.add(errs, e.fail(&kind.MaxLength{Got: l, Want: n.maxLen.n})) {
				return true
			}
		}
		if n.pattern != nil && !n.pattern.MatchString(p.s) &&
			e.add(errs, e.fail(&kind.Pattern{Got: p.s, Want: n.pattern.String()})) {
			return true
		}
	case tNumber:
		return e.numberRules(n, p, errs)
	}
	return false
}

// numberRules checks minimum, maximum, exclusiveMinimum, exclusiveMaximum and multipleOf,
// in the library's order; it reports whether evaluation stops.
func (e *evaluator) numberRules(n *node, p *scalar, errs *[]*jsonschema.ValidationError) bool {
	if n.minimum == nil && n.maximum == nil && n.exMinimum == nil && n.exMaximum == nil && n.multipleOf == nil {
		return false
	}
	x := parseNum(p.s)
	for rule, b := range [...]*bound{n.minimum, n.maximum, n.exMinimum, n.exMaximum} {
		if b == nil {
			continue
		}
		c, ok := x.cmp(b)
		if !ok {
			e.outRange(p.s)
			return true
		}
		if !boundHolds(rule, c) && e.add(errs, e.boundErr(rule, &x, b)) {
			return true
		}
	}
	if n.multipleOf != nil {
		yes, ok := x.multipleOf(n.multipleOf)
		if !ok {
			e.outRange(p.s)
			return true
		}
		if !yes && e.add(errs, e.boundErr(ruleMultipleOf, &x, n.multipleOf)) {
			return true
		}
	}
	return false
}

// The numeric rules, in the order of numberRules' list.
const (
	ruleMinimum = iota
	ruleMaximum
	ruleExMinimum
	ruleExMaximum
	ruleMultipleOf
)

// boundHolds reports whether c, a number compared with a bound, meets rule.
func boundHolds(rule, c int) bool {
	switch rule {
	case ruleMinimum:
		return c >= 0
	case ruleMaximum:
		return c <= 0
	case ruleExMinimum:
		return c > 0
	}
	return c < 0
}

// boundErr is the library's error of x breaking rule.
func (e *evaluator) boundErr(rule int, x *num, b *bound) *jsonschema.ValidationError {
	if !e.explain {
		return errFailed
	}
	got := x.display()
	var k jsonschema.ErrorKind
	switch rule {
	case ruleMinimum:
		k = &kind.Minimum{Got: got, Want: b.r}
	case ruleMaximum:
		k = &kind.Maximum{Got: got, Want: b.r}
	case ruleExMinimum:
		k = &kind.ExclusiveMinimum{Got: got, Want: b.r}
	case ruleExMaximum:
		k = &kind.ExclusiveMaximum{Got: got, Want: b.r}
	default:
		k = &kind.MultipleOf{Got: got, Want: b.r}
	}
	return e.fail(k)
}

// object checks the object keywords; it reports whether evaluation stops.
func (e *evaluator) object(n *node, m map[string]any, errs *[]*jsonschema.ValidationError) bool {
	if n.minProps.below(len(m)) && e.add(errs, e.fail(&kind.MinProperties{Got: len(m), Want: n.minProps.n})) {
		return true
	}
	if n.maxProps.above(len(m)) && e.add(errs, e.fail(&kind.MaxProperties{Got: len(m), Want: n.maxProps.n})) {
		return true
	}
	var missing []string
	for _, r := range n.required {
		if _, ok := m[r]; !ok {
			if !e.explain {
				return true
			}
			missing = append(missing, r)
		}
	}
	if missing != nil {
		e.add(errs, e.fail(&kind.Required{Missing: missing}))
	}
	if n.props == nil && n.addl == nil && !n.addlFalse {
		return false
	}
	var additional []string
	member := func(k string, v any) bool {
		sub, ok := n.props[k]
		switch {
		case ok:
		case n.addlFalse:
			if !e.explain {
				return true
			}
			additional = append(additional, k)
			return false
		case n.addl != nil:
			sub = n.addl
		default:
			return false
		}
		e.push(k)
		err := e.check(sub, v)
		e.pop()
		return e.add(errs, err)
	}
	if !e.explain {
		for k, v := range m {
			if member(k, v) {
				return true
			}
		}
		return false
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		member(k, m[k])
	}
	if len(additional) > 0 {
		e.add(errs, e.fail(&kind.AdditionalProperties{Properties: additional}))
	}
	return false
}

// array checks the array keywords; it reports whether evaluation stops.
func (e *evaluator) array(n *node, a []any, errs *[]*jsonschema.ValidationError) bool {
	if n.minItems.below(len(a)) && e.add(errs, e.fail(&kind.MinItems{Got: len(a), Want: n.minItems.n})) {
		return true
	}
	if n.maxItems.above(len(a)) && e.add(errs, e.fail(&kind.MaxItems{Got: len(a), Want: n.maxItems.n})) {
		return true
	}
	if n.items == nil {
		return false
	}
	for i, v := range a {
		if e.explain {
			e.push(strconv.Itoa(i))
		}
		err := e.check(n.items, v)
		e.pop()
		if e.add(errs, err) {
			return true
		}
	}
	return false
}

// decide evaluates sub in decide mode whatever e's mode; it reports whether v is valid.
func (e *evaluator) decide(sub *node, v any) bool {
	explain := e.explain
	e.explain = false
	err := e.check(sub, v)
	e.explain = explain
	return err == nil
}

// cond checks not, allOf, anyOf and oneOf; it reports whether evaluation stops.
func (e *evaluator) cond(n *node, v any, errs *[]*jsonschema.ValidationError) bool {
	if n.not != nil && e.decide(n.not, v) && e.add(errs, e.fail(&kind.Not{})) {
		return true
	}
	if len(n.allOf) > 0 {
		var failed []*jsonschema.ValidationError
		for _, sub := range n.allOf {
			if err := e.check(sub, v); err != nil {
				if !e.explain {
					return true
				}
				failed = append(failed, err)
			}
		}
		if failed != nil {
			g := e.fail(&kind.AllOf{})
			g.Causes = failed
			e.add(errs, g)
		}
	}
	if len(n.anyOf) > 0 {
		matched := false
		var failed []*jsonschema.ValidationError
		for _, sub := range n.anyOf {
			err := e.check(sub, v)
			if err == nil {
				matched = true
				break
			}
			if e.explain {
				failed = append(failed, err)
			}
		}
		if !matched {
			if !e.explain {
				return true
			}
			g := e.fail(&kind.AnyOf{})
			g.Causes = failed
			e.add(errs, g)
		}
	}
	if len(n.oneOf) > 0 {
		matched := -1
		var failed []*jsonschema.ValidationError
		for i, sub := range n.oneOf {
			var ok bool
			if matched == -1 {
				err := e.check(sub, v)
				ok = err == nil
				if !ok && e.explain {
					failed = append(failed, err)
				}
			} else {
				ok = e.decide(sub, v)
			}
			if !ok {
				continue
			}
			if matched != -1 {
				if e.add(errs, e.fail(&kind.OneOf{Subschemas: []int{matched, i}})) {
					return true
				}
				break
			}
			matched = i
		}
		if matched == -1 {
			if !e.explain {
				return true
			}
			g := e.fail(&kind.OneOf{})
			g.Causes = failed
			e.add(errs, g)
		}
	}
	return false
}

// quotePtr is the library's quoted JSON pointer of an instance location.
func quotePtr(loc []string) string {
	var sb strings.Builder
	for _, tok := range loc {
		sb.WriteByte('/')
		tok = strings.ReplaceAll(tok, "~", "~0")
		sb.WriteString(strings.ReplaceAll(tok, "/", "~1"))
	}
	s := strconv.Quote(sb.String())
	s = strings.ReplaceAll(s, `\"`, `"`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s[1:len(s)-1] + "'"
}
