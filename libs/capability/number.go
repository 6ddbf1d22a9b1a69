package capability

import (
	"math"
	"math/big"
	"strconv"
)

// Numbers as the library sees them: it reads every number literal with big.Rat.SetString
// and compares the rationals. SetString costs time quadratic in a literal's digits and
// linear in its exponent (tens of milliseconds for 1e999999), so the validator reads a
// literal of the JSON grammar as a decimal (dec) instead — the same answers (SetString's
// refusals included) in time linear in the literal — and keeps big.Rat for other literals
// (json.Number values a caller made) and for multipleOf.

// dec is a JSON number literal read as sign × 0.d₁d₂…dₙ × 10^e10: the significant digits
// are the literal's mantissa digits (integer part, then fraction) from lo to hi, without
// leading or trailing zeros.
type dec struct {
	neg, zero bool
	// ok: big.Rat.SetString accepts the literal (its exponent fits an int64 and, for a
	// non-zero mantissa, |exponent − fraction digits| ≤ 1e6).
	ok     bool
	ip, fp string // integer and fraction digits
	lo, hi int    // significant digits of ip+fp
	e10    int64  // exponent of 0.d₁…dₙ
	q      int64  // exponent of the last significant digit: integer iff q ≥ 0
}

// parseDec reads lit; ok is false when lit is not in the JSON number grammar.
func parseDec(lit string) (d dec, ok bool) {
	intEnd, fracEnd, end, ok := numberSyntax(lit, 0)
	if !ok || end != len(lit) {
		return d, false
	}
	d.neg = lit[0] == '-'
	if d.neg {
		d.ip = lit[1:intEnd]
	} else {
		d.ip = lit[:intEnd]
	}
	if fracEnd > intEnd {
		d.fp = lit[intEnd+1 : fracEnd]
	}
	var exp int64
	expOK := true
	if end > fracEnd {
		// SetString reads the exponent with ParseInt, a "+" dropped.
		e := lit[fracEnd+1:]
		if e[0] == '+' {
			e = e[1:]
		}
		var err error
		exp, err = strconv.ParseInt(e, 10, 64)
		expOK = err == nil
	}
	n := len(d.ip) + len(d.fp)
	for d.lo < n && d.digit(d.lo) == '0' {
		d.lo++
	}
	d.hi = n
	for d.hi > d.lo && d.digit(d.hi-1) == '0' {
		d.hi--
	}
	d.zero = d.lo == d.hi
	exp5 := exp - int64(len(d.fp))
	d.ok = expOK && (d.zero || (exp5 >= -1e6 && exp5 <= 1e6))
	if d.ok && !d.zero {
		d.e10 = exp + int64(len(d.ip)) - int64(d.lo)
		d.q = exp5 + int64(n-d.hi)
	}
	return d, true
}

// digit is the k-th digit of ip+fp.
func (d *dec) digit(k int) byte {
	if k < len(d.ip) {
		return d.ip[k]
	}
	return d.fp[k-len(d.ip)]
}

func (d *dec) sign() int {
	switch {
	case d.zero:
		return 0
	case d.neg:
		return -1
	}
	return 1
}

// cmp compares two accepted (ok) decimals.
func (d *dec) cmp(o *dec) int {
	sa, sb := d.sign(), o.sign()
	if sa != sb || sa == 0 {
		return sa - sb
	}
	m := 0
	switch {
	case d.e10 < o.e10:
		m = -1
	case d.e10 > o.e10:
		m = 1
	default:
		n1, n2 := d.hi-d.lo, o.hi-o.lo
		for k := 0; k < n1 && k < n2 && m == 0; k++ {
			a, b := d.digit(d.lo+k), o.digit(o.lo+k)
			if a != b {
				m = int(a) - int(b)
			}
		}
		if m == 0 {
			m = n1 - n2
		}
	}
	if sa < 0 {
		m = -m
	}
	return m
}

// num is a number literal as the validator reads it: i when it is a plain integer that
// fits an int64 (small), else d when it is in the JSON grammar (json), else the big.Rat r
// (once needed).
type num struct {
	lit   string
	i     int64
	small bool
	d     dec
	json  bool
	r     *big.Rat
	rDone bool
	rOK   bool
}

func parseNum(lit string) num {
	x := num{lit: lit}
	s := lit
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) > 0 && len(s) <= 18 && (s[0] != '0' || len(s) == 1) {
		var v int64
		small := true
		for i := 0; i < len(s) && small; i++ {
			c := s[i]
			small = c >= '0' && c <= '9'
			v = v*10 + int64(c-'0')
		}
		if small {
			if neg {
				v = -v
			}
			x.i, x.small = v, true
			return x
		}
	}
	x.d, x.json = parseDec(lit)
	return x
}

// rat is the literal as the library reads it; ok is false when big.Rat cannot hold it.
func (x *num) rat() (*big.Rat, bool) {
	if !x.rDone {
		x.r, x.rOK = new(big.Rat).SetString(x.lit)
		x.rDone = true
	}
	return x.r, x.rOK
}

// isInteger is the library's isInteger.
func (x *num) isInteger() bool {
	switch {
	case x.small:
		return true
	case x.json:
		return x.d.ok && (x.d.zero || x.d.q >= 0)
	}
	r, ok := x.rat()
	return ok && r.IsInt()
}

// cmp compares x with b; ok is false when x is out of big.Rat's range (where the library
// panics).
func (x *num) cmp(b *bound) (c int, ok bool) {
	y := &b.n
	switch {
	case x.small && y.small:
		switch {
		case x.i < y.i:
			return -1, true
		case x.i > y.i:
			return 1, true
		}
		return 0, true
	case x.exact() && y.exact():
		xd, yd := x.decimal(), y.decimal()
		if !xd.ok {
			return 0, false
		}
		return xd.cmp(&yd), true
	}
	r, ok := x.rat()
	if !ok {
		return 0, false
	}
	return r.Cmp(b.r), true
}

// exact reports whether x has a decimal form (small or JSON grammar).
func (x *num) exact() bool { return x.small || x.json }

// decimal is x's decimal form (x.exact()).
func (x *num) decimal() dec {
	if x.json {
		return x.d
	}
	d, _ := parseDec(x.lit) // a plain integer: cheap
	return d
}

// multipleOf reports whether x is a multiple of b, as the library's quotient test.
func (x *num) multipleOf(b *bound) (yes, ok bool) {
	if x.small && b.n.small && b.n.i > 0 {
		return x.i%b.n.i == 0, true
	}
	r, ok := x.rat()
	if !ok || b.r.Sign() == 0 {
		return false, ok
	}
	return new(big.Rat).Quo(r, b.r).IsInt(), true
}

// display is a big.Rat whose float64 is that of x: what the library's error texts print.
// For a literal of the JSON grammar it is built from strconv.ParseFloat (correctly rounded,
// as big.Rat.Float64 is) rather than from the literal.
func (x *num) display() *big.Rat {
	if !x.exact() || !x.decimal().ok {
		r, _ := x.rat()
		return r
	}
	d := x.decimal()
	if d.zero {
		return new(big.Rat)
	}
	f, _ := strconv.ParseFloat(x.lit, 64)
	far := ""
	switch {
	case math.IsInf(f, 0):
		far = "1e400" // beyond float64: rounds to ±Inf as x does
	case f == 0:
		far = "1e-400" // below the smallest float64: rounds to ±0 as x does
	default:
		return new(big.Rat).SetFloat64(f)
	}
	r, _ := new(big.Rat).SetString(far)
	if d.neg {
		r.Neg(r)
	}
	return r
}

// numEqual is the library's number equality (both read as big.Rat).
func numEqual(a, b string) bool {
	x, y := parseNum(a), parseNum(b)
	if x.small && y.small {
		return x.i == y.i
	}
	if x.exact() && y.exact() {
		xd, yd := x.decimal(), y.decimal()
		return xd.ok && yd.ok && xd.cmp(&yd) == 0
	}
	rx, ok1 := x.rat()
	ry, ok2 := y.rat()
	return ok1 && ok2 && rx.Cmp(ry) == 0
}
