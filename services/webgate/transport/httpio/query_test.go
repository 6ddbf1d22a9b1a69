package httpio

import (
	"net/url"
	"testing"
)

func TestQueryGet(t *testing.T) {
	for _, c := range []struct{ raw, key, want string }{
		{"", "a", ""},
		{"a=1&b=2", "b", "2"},
		{"a=1&a=2", "a", "1"},
		{"authorization=YXBp%3D%3D&date=Mon%2C+07+Dec+2026", "date", "Mon, 07 Dec 2026"},
		{"authorization=YXBp%3D%3D", "authorization", "YXBp=="},
		{"a;b=1&b=2", "b", "2"}, // a pair with ';' is skipped
		{"b=%zz&b=3", "b", "3"}, // a value that does not unescape is skipped
		{"%62=4", "b", "4"},     // an escaped key
		{"b", "b", ""},          // a key without '='
		{"c=1&&b=5&", "b", "5"},
		{"b+c=6", "b c", "6"},
		{"%=0", "%", ""}, // a key that does not unescape is skipped
	} {
		if got := QueryGet(c.raw, c.key); got != c.want {
			t.Errorf("QueryGet(%q, %q) = %q, want %q", c.raw, c.key, got, c.want)
		}
	}
}

// FuzzQueryGet checks QueryGet against url.ParseQuery(raw).Get(key) for any query.
func FuzzQueryGet(f *testing.F) {
	f.Add("authorization=YXBp%3D%3D&date=Mon%2C+07+Dec+2026&host=example.com", "date")
	f.Add("a;b=1&b=2&%62=3", "b")
	f.Add("x=%zz&x=1", "x")
	f.Fuzz(func(t *testing.T, raw, key string) {
		v, _ := url.ParseQuery(raw)
		if want, got := v.Get(key), QueryGet(raw, key); got != want {
			t.Fatalf("QueryGet(%q, %q) = %q, url.ParseQuery gives %q", raw, key, got, want)
		}
	})
}

func BenchmarkQueryGet(b *testing.B) {
	raw := "authorization=YXBpX2tleT0iYmVuY2gta2V5IiwgYWxnb3JpdGhtPSJobWFjLXNoYTI1NiIsIGhlYWRlcnM9Imhvc3QgZGF0ZSByZXF1ZXN0LWxpbmUiLCBzaWduYXR1cmU9IlhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFg9Ig%3D%3D&date=Mon%2C+07+Dec+2026+02%3A20%3A16+GMT&host=127.0.0.1%3A8080"
	b.Run("ParseQuery", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, _ := url.ParseQuery(raw)
			_, _, _, _ = v.Get("serviceId"), v.Get("authorization"), v.Get("date"), v.Get("host")
		}
	})
	b.Run("QueryGet", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, _, _ = QueryGet(raw, "serviceId"), QueryGet(raw, "authorization"), QueryGet(raw, "date"), QueryGet(raw, "host")
		}
	})
}
