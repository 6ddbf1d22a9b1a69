package diff

import (
	"strings"
	"testing"
)

// apply rebuilds both texts from a diff.
func apply(lines []Line) (old, new []string) {
	for _, l := range lines {
		if l.Op != Insert {
			old = append(old, l.Text)
		}
		if l.Op != Delete {
			new = append(new, l.Text)
		}
	}
	return old, new
}

func TestLines(t *testing.T) {
	d := Lines("a=1\nb=2\nc=3\n", "a=1\nb=20\nc=3\nd=4\n")
	got := Unified(d)
	want := " a=1\n-b=2\n+b=20\n c=3\n+d=4\n"
	if got != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", got, want)
	}
	if ins, del := Stats(d); ins != 2 || del != 1 {
		t.Fatalf("stats %d %d", ins, del)
	}
	if d[3].A != 3 || d[3].B != 3 || d[4].B != 4 {
		t.Fatalf("line numbers: %+v", d)
	}
	if len(Lines("", "")) != 0 {
		t.Fatal("empty diff")
	}
}

func TestLargeFallback(t *testing.T) {
	var a, b strings.Builder
	for i := 0; i < 3000; i++ {
		a.WriteString("x\n")
		b.WriteString("y\n")
	}
	d := Lines(a.String(), b.String())
	if ins, del := Stats(d); ins != 3000 || del != 3000 {
		t.Fatalf("fallback stats %d %d", ins, del)
	}
}

func FuzzLines(f *testing.F) {
	f.Add("a\nb\nc", "a\nc\nd\n")
	f.Add("", "x")
	f.Add("same\n", "same\n")
	f.Fuzz(func(t *testing.T, a, b string) {
		d := Lines(a, b)
		oa, ob := apply(d)
		if strings.Join(oa, "\n") != strings.Join(Split(a), "\n") || strings.Join(ob, "\n") != strings.Join(Split(b), "\n") {
			t.Fatalf("diff does not rebuild its inputs: %q %q", a, b)
		}
		if a == b {
			if ins, del := Stats(d); ins+del != 0 {
				t.Fatal("equal texts differ")
			}
		}
	})
}
