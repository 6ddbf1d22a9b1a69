package traffic

import (
	"errors"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
)

func TestChooseIsExactPerHundred(t *testing.T) {
	tb := NewTable()
	if v := tb.Choose("echo"); v != "" {
		t.Fatalf("no split: %q", v)
	}
	if err := tb.Apply("traffic_echo.json", []byte(`{"versions":{"1":90,"2":10}}`)); err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for range 300 {
		n[tb.Choose("echo")]++
	}
	if n["1"] != 270 || n["2"] != 30 {
		t.Fatalf("split %v, want 270/30", n)
	}
	if err := tb.Apply("traffic_echo.json", []byte(`{"versions":{"2":100,"1":0}}`)); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if v := tb.Choose("echo"); v != "2" {
			t.Fatalf("100 %% to 2, got %q", v)
		}
	}
	if err := tb.Apply("traffic_echo.json", nil); err != nil || tb.Choose("echo") != "" {
		t.Fatalf("empty file removes the split: %v", err)
	}
}

func TestParseRefusesBadSplits(t *testing.T) {
	for _, bad := range []string{`{"versions":{"1":50}}`, `{"versions":{"1":-10,"2":110}}`, `{"versions":{"":100}}`, `{"versions":{"a@b":100}}`, `{"v":1}`, `[`} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, aserr.ErrInvalidParam) {
			t.Errorf("%s: %v, want 10107", bad, err)
		}
	}
	if err := NewTable().Apply("schema_echo.json", []byte(`{}`)); !errors.Is(err, aserr.ErrInvalidParam) {
		t.Errorf("wrong file name: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"versions":{"1":90,"2":10}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		tb := NewTable()
		tb.Set("x", s)
		_ = tb.Choose("x")
	})
}
