// Package diff computes a line diff between two texts (longest common subsequence),
// for the console's and the admin API's view of two config revisions.
//
//	for _, l := range diff.Lines(old, new) { fmt.Printf("%c %s\n", l.Op, l.Text) }
package diff

import "strings"

// Op is what happened to a line.
type Op byte

// Ops.
const (
	// Equal is a line in both texts.
	Equal Op = ' '
	// Insert is a line only in the new text.
	Insert Op = '+'
	// Delete is a line only in the old text.
	Delete Op = '-'
)

// MaxCells bounds the LCS table (old lines × new lines); beyond it the diff is every old
// line deleted and every new line inserted, which is correct, only not minimal.
const MaxCells = 4 << 20

// Line is one line of a diff; A and B are its 1-based numbers in the old and new text
// (0 when the line is not in that text).
type Line struct {
	Op   Op     `json:"op"`
	Text string `json:"text"`
	A    int    `json:"a,omitempty"`
	B    int    `json:"b,omitempty"`
}

// Split cuts text into lines; a final newline does not make an empty last line.
func Split(text string) []string {
	if text == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(text, "\n"), "\n")
}

// Lines returns the diff from old to new, in order.
func Lines(old, new string) []Line {
	a, b := Split(old), Split(new)
	// Common prefix and suffix are cheap and keep the table small.
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	out := make([]Line, 0, len(a)+len(b))
	for i := 0; i < p; i++ {
		out = append(out, Line{Op: Equal, Text: a[i], A: i + 1, B: i + 1})
	}
	out = append(out, middle(a[p:len(a)-s], b[p:len(b)-s], p, p)...)
	for i := 0; i < s; i++ {
		ai, bi := len(a)-s+i, len(b)-s+i
		out = append(out, Line{Op: Equal, Text: a[ai], A: ai + 1, B: bi + 1})
	}
	return out
}

func middle(a, b []string, offA, offB int) []Line {
	n, m := len(a), len(b)
	var out []Line
	if n*m > MaxCells {
		for i, t := range a {
			out = append(out, Line{Op: Delete, Text: t, A: offA + i + 1})
		}
		for j, t := range b {
			out = append(out, Line{Op: Insert, Text: t, B: offB + j + 1})
		}
		return out
	}
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			out = append(out, Line{Op: Equal, Text: a[i], A: offA + i + 1, B: offB + j + 1})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			out = append(out, Line{Op: Delete, Text: a[i], A: offA + i + 1})
			i++
		default:
			out = append(out, Line{Op: Insert, Text: b[j], B: offB + j + 1})
			j++
		}
	}
	return out
}

// Unified renders lines as text, one line each prefixed by its op.
func Unified(lines []Line) string {
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteByte(byte(l.Op))
		sb.WriteString(l.Text)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Stats counts inserted and deleted lines.
func Stats(lines []Line) (ins, del int) {
	for _, l := range lines {
		switch l.Op {
		case Insert:
			ins++
		case Delete:
			del++
		}
	}
	return ins, del
}
