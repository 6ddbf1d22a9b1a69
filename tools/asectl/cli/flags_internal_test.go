package cli

import (
	"bytes"
	"testing"
)

func FuzzInputItem(f *testing.F) {
	for _, s := range []string{"input:text", "audio:audio:raw", "x", ":text", "a:blob", "a::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl := callFlags{input: s}
		in, err := fl.item()
		if err != nil {
			if !isUsage(err) {
				t.Fatalf("%q: a bad --input is a usage error, got %v", s, err)
			}
			return
		}
		if in.Name == "" || in.Encoding == "" {
			t.Fatalf("%q parsed into %+v", s, in)
		}
	})
}

func FuzzSplit(f *testing.F) {
	f.Add([]byte("abcdef"), 2, 0)
	f.Add([]byte(""), 1280, 0)
	f.Add([]byte("abc"), 0, 5)
	f.Fuzz(func(t *testing.T, data []byte, size, n int) {
		if n > 1000 {
			n = 1000 // frames are allocated per count
		}
		chunks, err := split(data, size, n)
		if err != nil {
			if !isUsage(err) {
				t.Fatalf("split(%d, %d): %v", size, n, err)
			}
			return
		}
		if len(chunks) < 2 || (n >= 2 && len(chunks) < n) || !bytes.Equal(bytes.Join(chunks, nil), data) {
			t.Fatalf("split(%q, %d, %d) = %q", data, size, n, chunks)
		}
	})
}
