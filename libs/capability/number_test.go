package capability

import (
	"math/big"
	"strings"
	"testing"
)

// checkNumbers asserts that the validator reads literals a and b as the library does
// (big.Rat.SetString): accepted or not, integer or not, their order and equality, and the
// float64 the library's error texts print.
func checkNumbers(t *testing.T, a, b string) {
	t.Helper()
	x, y := parseNum(a), parseNum(b)
	ra, okA := new(big.Rat).SetString(a)
	rb, okB := new(big.Rat).SetString(b)
	if got, want := x.isInteger(), okA && ra.IsInt(); got != want {
		t.Errorf("isInteger(%s) = %v, want %v", a, got, want)
	}
	if got, want := numEqual(a, b), okA && okB && ra.Cmp(rb) == 0; got != want {
		t.Errorf("numEqual(%s, %s) = %v, want %v", a, b, got, want)
	}
	if !okB {
		return
	}
	c, ok := x.cmp(&bound{r: rb, n: y})
	if ok != okA {
		t.Fatalf("cmp(%s, %s) ok = %v, want %v", a, b, ok, okA)
	}
	if !okA {
		return
	}
	if want := ra.Cmp(rb); sign(c) != want {
		t.Errorf("cmp(%s, %s) = %d, want %d", a, b, c, want)
	}
	got, _ := x.display().Float64()
	want, _ := ra.Float64()
	if got != want || (got == 0 && (1/got > 0) != (1/want > 0)) {
		t.Errorf("display(%s) = %v, want %v", a, got, want)
	}
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

func TestNumbersAsLibrary(t *testing.T) {
	lits := []string{"0", "-0", "0.0", "-0.0e5", "1", "-1", "10", "1.0", "1.50", "1.5", "100e-2", "1e2", "1E+2", "1e-2",
		"123456789012345678", "1234567890123456789", "-9223372036854775808", "9223372036854775808",
		"123456789012345678901234567890", "0.000123", "123.456e-1", "5e-324", "2.4703282292062327e-324",
		"1.7976931348623157e308", "1.7976931348623159e308", "1e400", "-1e-400", "0.1e1", "10e-1", "7", "-5", "16000", "8000.0"}
	for _, a := range lits {
		for _, b := range lits {
			checkNumbers(t, a, b)
		}
	}
	// SetString's limits: |exponent − fraction digits| ≤ 1e6 for a non-zero mantissa, an
	// exponent that fits an int64. (Slow for big.Rat: a few only.)
	for _, a := range []string{"1e1000000", "1e1000001", "1.5e1000001", "0.5e-999999", "0.55e-999999", "-1e-1000000",
		"0e99999999999999999999", "0e-9223372036854775808", "1e9223372036854775807", "1e-9223372036854775808"} {
		checkNumbers(t, a, "1")
	}
	// Literals outside the JSON grammar (a caller's json.Number) keep big.Rat.
	for _, a := range []string{"0x10", "+5", "1_000", "007", "", "-", "1e", ".5"} {
		checkNumbers(t, a, "16")
	}
}

// TestHugeNumbersWithoutBigRat: literals big.Rat takes tens of milliseconds over (a long
// exponent, a long mantissa) are decided without it: a valid document of them costs no
// allocation at all, where big.Rat allocates for each.
func TestHugeNumbersWithoutBigRat(t *testing.T) {
	ts := parseInput(t, "n", `{"properties":{"a":{"type":"array","items":{"type":"number","maximum":100,"minimum":-1}}}}`)
	doc := []byte(`{"a":[1e-999999,-0.5e-999999,0.` + strings.Repeat("0", 5000) + `1,1` + strings.Repeat("0", 3000) + `e-3000]}`)
	allocs := testing.AllocsPerRun(5, func() {
		if err := ts.s.ValidateJSON(doc); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
	big := []byte(`{"a":[` + strings.Repeat("9", 5000) + `]}`)
	err := ts.s.ValidateJSON(big)
	if err == nil || err.Error() != "at '/a/0': maximum: got ∞, want 100" {
		t.Fatalf("got %v", err)
	}
	ref, _ := DecodeJSON(big)
	agree(t, ts, big, ref, nil)
}

// FuzzNumbers: for literals of the JSON grammar the decimal reading answers as big.Rat.
func FuzzNumbers(f *testing.F) {
	for _, s := range []string{"0", "-0.0", "1.50", "1e2", "123456789012345678901234567890", "5e-324", "1e400", "0.000123e4"} {
		f.Add(s, "1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, s := range []string{a, b} {
			d, ok := parseDec(s)
			if !ok || len(s) > 400 || !d.ok {
				return
			}
			// Keep big.Rat quick: small exponents only.
			if e := strings.IndexAny(s, "eE"); e >= 0 && len(s)-e > 5 {
				return
			}
		}
		checkNumbers(t, a, b)
	})
}
