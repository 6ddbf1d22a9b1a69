package capability

import (
	"slices"
	"unsafe"
)

// The walker validates a JSON document straight from its bytes against a compiled schema,
// without decoding it: strings are looked at only where a keyword reads them (a large
// base64 data field under {"type":"string"} is only scanned), and the common document
// allocates nothing. It answers "valid" only when the decoded document is valid; for
// anything else (an invalid document, an escaped or repeated key that decoding would
// merge, a keyword it does not evaluate itself) the caller decodes the document and
// evaluates the tree, which decides and words the errors. A node the walker does not
// evaluate itself (oneOf, not, min/maxProperties, const or enum of objects or arrays) has
// its value decoded and evaluated as a tree on the spot.
//
// A repeated key is walked at each occurrence: the decoded object keeps the last, and when
// every occurrence is valid the last one is too.

// baseView is the part of a session's first document that a later message's document
// inherits: at the top level (top) the members keys of m that are not null, below it every
// member of m.
type baseView struct {
	m    map[string]any
	keys []string
	top  bool
}

// get returns the inherited value of member k.
func (v baseView) get(k string) (any, bool) {
	if v.m == nil {
		return nil, false
	}
	if !v.top {
		x, ok := v.m[k]
		return x, ok
	}
	if !slices.Contains(v.keys, k) {
		return nil, false
	}
	x := v.m[k]
	return x, x != nil
}

// apply returns doc with the view laid under it, as the tree sees a later message.
func (v baseView) apply(doc any) any {
	if v.top {
		return overlayTop(doc, v.m, v.keys)
	}
	return overlay(v.m, doc)
}

// overlay returns over laid on base: objects merge key by key (recursively), anything else
// in over replaces base; base is never modified. A missing (nil) over is base.
func overlay(base, over any) any {
	if over == nil {
		return base
	}
	b, ok1 := base.(map[string]any)
	o, ok2 := over.(map[string]any)
	if !ok1 || !ok2 {
		return over
	}
	m := make(map[string]any, len(b)+len(o))
	for k, v := range b {
		m[k] = v
	}
	for k, v := range o {
		m[k] = overlay(b[k], v)
	}
	return m
}

// overlayTop lays the members keys of base under those of doc, when doc is an object: each
// becomes overlay(base's, doc's) unless that is nil. doc is modified; base is not.
func overlayTop(doc any, base map[string]any, keys []string) any {
	m, ok := doc.(map[string]any)
	if !ok || base == nil {
		return doc
	}
	for _, k := range keys {
		if v := overlay(base[k], m[k]); v != nil {
			m[k] = v
		}
	}
	return m
}

// unsafeString views b as a string without copying; the string must not outlive b's
// contents, nor be kept.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// walker walks one document. ev evaluates (in decide mode) the inherited values and the
// values decoded on the spot.
type walker struct {
	b  []byte
	ev evaluator
}

// walk reports whether data, with view laid under it, is valid against n. false means
// "not known to be valid".
func walk(n *node, data []byte, view baseView) bool {
	w := walker{b: data}
	end, ok := w.value(n, skipWS(data, 0), view, 0)
	return ok && !w.ev.bad && !w.ev.outOfRange && skipWS(data, end) == len(data)
}

// tree evaluates a decoded value against n (nil: no constraint).
func (w *walker) tree(n *node, v any) bool {
	return n == nil || w.ev.check(n, v) == nil
}

// value walks the value at b[i] against n; view applies when the value is an object.
func (w *walker) value(n *node, i int, view baseView, depth int) (int, bool) {
	b := w.b
	if i >= len(b) || depth > maxDepth {
		return 0, false
	}
	switch n.boolean {
	case 1:
		return skipValue(b, i, depth)
	case -1:
		return 0, false
	}
	if !n.streamable {
		return w.fallback(n, i, view, depth)
	}
	var end int
	var ok bool
	switch c := b[i]; c {
	case '{', '[':
		t := tObject
		if c == '[' {
			t = tArray
		}
		// const and enum hold no object or array here (streamable): they cannot match.
		if (n.types != 0 && n.types&t == 0) || n.hasConst || n.hasEnum {
			return 0, false
		}
		if t == tObject {
			end, ok = w.object(n, i, view, depth)
		} else {
			end, ok = w.array(n, i, depth)
		}
	default:
		if end, ok = w.scalar(n, i); !ok {
			return 0, false
		}
	}
	if !ok {
		return 0, false
	}
	for _, sub := range n.allOf {
		if _, ok := w.value(sub, i, view, depth+1); !ok {
			return 0, false
		}
	}
	if len(n.anyOf) > 0 {
		matched := false
		for _, sub := range n.anyOf {
			if _, ok := w.value(sub, i, view, depth+1); ok {
				matched = true
				break
			}
		}
		if !matched {
			return 0, false
		}
	}
	return end, true
}

// scalar walks the string, number, boolean or null at b[i] against n's own keywords.
func (w *walker) scalar(n *node, i int) (int, bool) {
	b := w.b
	p := scalar{runes: -1}
	var end int
	var ok bool
	switch b[i] {
	case '"':
		var flags uint8
		if end, flags, ok = scanString(b, i); !ok {
			return 0, false
		}
		p.t = tString
		if n.hasConst || n.hasEnum || n.pattern != nil || n.minLen.set || n.maxLen.set {
			if raw := b[i+1 : end-1]; plainText(raw, flags) {
				p.s = unsafeString(raw)
				if flags&strNonASCII == 0 {
					p.runes = len(raw)
				}
			} else if p.s, ok = decodeString(b, i, end, flags); !ok {
				return 0, false
			}
		}
	case 't':
		end, ok = scanLiteral(b, i, "true")
		p.t, p.b = tBoolean, true
	case 'f':
		end, ok = scanLiteral(b, i, "false")
		p.t = tBoolean
	case 'n':
		end, ok = scanLiteral(b, i, "null")
		p.t = tNull
	default:
		if end, ok = scanNumber(b, i); ok {
			p.t, p.s = tNumber, unsafeString(b[i:end])
		}
	}
	if !ok || w.ev.scalarHead(n, &p) != nil || w.ev.scalarRules(n, &p, nil) {
		return 0, false
	}
	return end, true
}

// maxInherit bounds the members of an object walked with an inherited view (the keys
// seen are kept on the stack); a larger one is decoded.
const maxInherit = 16

// object walks the object at b[i] against n's member keywords.
func (w *walker) object(n *node, i int, view baseView, depth int) (int, bool) {
	b := w.b
	if !n.members {
		return skipValue(b, i, depth)
	}
	var required uint64 // bit r: n.required[r] seen
	var seen [maxInherit]string
	nseen := 0
	decode := false
	end, ok := members(b, i, func(ks, ke int, flags uint8, j int) (int, bool) {
		key := b[ks+1 : ke-1]
		if !plainText(key, flags) {
			decode = true // an escaped key: decoding may give another name, or a repeat
			return 0, false
		}
		k := unsafeString(key)
		if view.m != nil {
			if nseen == len(seen) {
				decode = true
				return 0, false
			}
			seen[nseen] = k
			nseen++
		}
		for r, name := range n.required {
			if name == k {
				required |= 1 << r
			}
		}
		return w.member(n, k, j, view, depth)
	})
	if decode {
		return w.fallback(n, i, view, depth)
	}
	if !ok {
		return 0, false
	}
	for r, name := range n.required {
		if required&(1<<r) == 0 {
			if _, ok := view.get(name); !ok {
				return 0, false
			}
		}
	}
	if view.m != nil && !w.inherited(n, view, seen[:nseen]) {
		return 0, false
	}
	return end, true
}

// memberNode is the schema of member k: its property schema, else additionalProperties'
// (nil: none); ok is false when additionalProperties is false and k is not a property.
func (n *node) memberNode(k string) (sub *node, ok bool) {
	if sub, ok := n.props[k]; ok {
		return sub, true
	}
	if n.addlFalse {
		return nil, false
	}
	return n.addl, true
}

// member walks the value of member k at b[j] as the view makes it: a null inherits the
// first document's value, an object merges with the first document's object.
func (w *walker) member(n *node, k string, j int, view baseView, depth int) (int, bool) {
	b := w.b
	sub, ok := n.memberNode(k)
	if !ok || j >= len(b) {
		return 0, false
	}
	if view.m != nil {
		bv, inherited := view.get(k)
		if b[j] == 'n' {
			end, ok := scanLiteral(b, j, "null")
			return end, ok && w.tree(sub, bv)
		}
		if bm, isMap := bv.(map[string]any); isMap && inherited && b[j] == '{' && sub != nil {
			return w.value(sub, j, baseView{m: bm}, depth+1)
		}
	}
	if sub == nil {
		return skipValue(b, j, depth+1)
	}
	return w.value(sub, j, baseView{}, depth+1)
}

// inherited evaluates the members the view adds to the object (those it lacks).
func (w *walker) inherited(n *node, view baseView, seen []string) bool {
	add := func(k string, v any) bool {
		if slices.Contains(seen, k) {
			return true
		}
		sub, ok := n.memberNode(k)
		return ok && w.tree(sub, v)
	}
	if view.top {
		for _, k := range view.keys {
			if v, ok := view.get(k); ok && !add(k, v) {
				return false
			}
		}
		return true
	}
	for k, v := range view.m {
		if !add(k, v) {
			return false
		}
	}
	return true
}

// array walks the array at b[i] against n's array keywords.
func (w *walker) array(n *node, i int, depth int) (int, bool) {
	b := w.b
	if n.items == nil && !n.minItems.set && !n.maxItems.set {
		return skipValue(b, i, depth)
	}
	count := 0
	end, ok := elements(b, i, func(j int) (int, bool) {
		count++
		if n.items == nil {
			return skipValue(b, j, depth+1)
		}
		return w.value(n.items, j, baseView{}, depth+1)
	})
	if !ok || n.minItems.below(count) || n.maxItems.above(count) {
		return 0, false
	}
	return end, true
}

// fallback decodes the value at b[i], lays the view under it and evaluates the tree.
func (w *walker) fallback(n *node, i int, view baseView, depth int) (int, bool) {
	v, end, ok := decodeValue(w.b, i, depth)
	if !ok {
		return 0, false
	}
	if view.m != nil {
		v = view.apply(v)
	}
	return end, w.tree(n, v)
}
