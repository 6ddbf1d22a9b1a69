// Package traffic splits the requests and sessions of a capability between the engine
// versions its loaders serve, by percentage (canary): atom asks Choose for every request
// or session that pins no version, and picks only loaders of the version chosen. A
// capability's split is the polaris file traffic_<capability>.json in
// asf/default/capabilities/v1:
//
//	{"versions": {"1.0": 90, "2.0": 10}}
//
// Percentages are whole numbers summing to 100; {"versions": {}} (or an empty file)
// removes the split. The split is exact over every 100 consecutive choices (smooth
// weighted round robin), so a 10 % canary gets 10 of every 100 requests of one atom.
//
//	t := traffic.NewTable()
//	_ = t.Apply("traffic_echo.json", content)   // from the config watch
//	v := t.Choose("echo")                        // "" when echo has no split
package traffic

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/athenaserving/asf/libs/aserr"
)

// FilePrefix and FileSuffix frame a capability id in a split's file name.
const (
	FilePrefix = "traffic_"
	FileSuffix = ".json"
)

// Split is a capability's traffic split: version → percent.
type Split struct {
	Versions map[string]int `json:"versions"`
}

// Parse reads a split; bad JSON, unknown keys, negative or non-summing percentages and
// empty version names are errors with code 10107.
func Parse(b []byte) (Split, error) {
	var s Split
	if strings.TrimSpace(string(b)) == "" {
		return s, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Split{}, fmt.Errorf("traffic split: %v: %w", err, aserr.ErrInvalidParam)
	}
	if len(s.Versions) == 0 {
		return s, nil
	}
	sum := 0
	for v, p := range s.Versions {
		switch {
		case v == "" || strings.Contains(v, "@"):
			return Split{}, fmt.Errorf("traffic split: version %q: must be non-empty without '@': %w", v, aserr.ErrInvalidParam)
		case p < 0 || p > 100:
			return Split{}, fmt.Errorf("traffic split: version %s: %d %%: want 0..100: %w", v, p, aserr.ErrInvalidParam)
		}
		sum += p
	}
	if sum != 100 {
		return Split{}, fmt.Errorf("traffic split: percentages sum to %d, want 100: %w", sum, aserr.ErrInvalidParam)
	}
	return s, nil
}

// Capability returns the capability a split file is about ("" when file is not one).
func Capability(file string) string {
	c, ok := strings.CutPrefix(file, FilePrefix)
	if !ok {
		return ""
	}
	c, ok = strings.CutSuffix(c, FileSuffix)
	if !ok {
		return ""
	}
	return c
}

// wrr is one capability's smooth weighted round robin.
type wrr struct {
	versions []string
	weights  []int
	current  []int
}

func (w *wrr) next() string {
	best := -1
	for i := range w.versions {
		w.current[i] += w.weights[i]
		if best < 0 || w.current[i] > w.current[best] {
			best = i
		}
	}
	w.current[best] -= 100
	return w.versions[best]
}

// Table holds the splits of every capability. It is safe for concurrent use.
type Table struct {
	mu sync.Mutex
	by map[string]*wrr
}

// NewTable returns an empty table: no capability is split.
func NewTable() *Table { return &Table{by: map[string]*wrr{}} }

// Set makes s the split of capability (an empty split removes it).
func (t *Table) Set(capability string, s Split) {
	var w *wrr
	if len(s.Versions) > 0 {
		w = &wrr{}
		for v := range s.Versions {
			w.versions = append(w.versions, v)
		}
		slices.Sort(w.versions)
		for _, v := range w.versions {
			w.weights = append(w.weights, s.Versions[v])
		}
		w.current = make([]int, len(w.versions))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if w == nil {
		delete(t.by, capability)
		return
	}
	t.by[capability] = w
}

// Apply parses a split file named traffic_<capability>.json and sets it.
func (t *Table) Apply(file string, content []byte) error {
	c := Capability(file)
	if c == "" {
		return fmt.Errorf("traffic split file %q: want %s<capability>%s: %w", file, FilePrefix, FileSuffix, aserr.ErrInvalidParam)
	}
	s, err := Parse(content)
	if err != nil {
		return err
	}
	t.Set(c, s)
	return nil
}

// Choose returns the version the next request or session of capability goes to; ""
// when the capability has no split.
func (t *Table) Choose(capability string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.by[capability]
	if w == nil {
		return ""
	}
	return w.next()
}

// Splits returns every capability's split (for inspection).
func (t *Table) Splits() map[string]Split {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]Split, len(t.by))
	for c, w := range t.by {
		s := Split{Versions: map[string]int{}}
		for i, v := range w.versions {
			s.Versions[v] = w.weights[i]
		}
		out[c] = s
	}
	return out
}
