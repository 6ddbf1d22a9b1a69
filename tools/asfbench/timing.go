package asfbench

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TimingHeader is the response header in which webgate reports the latency split.
const TimingHeader = "X-Asf-Timing"

// Timing is the latency split a response reports: time spent in each tier, as the tiers measure
// it (each includes the tiers below it where the server says so; the harness reports them as
// given). Present is false when the response carried no split.
type Timing struct {
	Webgate, Atom, Loader, Engine time.Duration
	Present                       bool
}

func (t Timing) add(o Timing) Timing {
	return Timing{
		Webgate: t.Webgate + o.Webgate, Atom: t.Atom + o.Atom,
		Loader: t.Loader + o.Loader, Engine: t.Engine + o.Engine,
		Present: t.Present || o.Present,
	}
}

func (t Timing) div(n uint64) Timing {
	d := time.Duration(n)
	return Timing{Webgate: t.Webgate / d, Atom: t.Atom / d, Loader: t.Loader / d, Engine: t.Engine / d, Present: t.Present}
}

// ParseTiming parses an X-Asf-Timing value, `webgate=120;atom=80;loader=40;engine=12`
// (microseconds, any order, any subset; unknown keys are ignored; spaces around items allowed).
// An empty value gives a zero Timing with Present false.
func ParseTiming(v string) (Timing, error) {
	var t Timing
	v = strings.TrimSpace(v)
	if v == "" {
		return t, nil
	}
	for item := range strings.SplitSeq(v, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, val, ok := strings.Cut(item, "=")
		if !ok {
			return Timing{}, fmt.Errorf("timing item %q: missing '='", item)
		}
		us, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil || us < 0 || us > int64(time.Hour/time.Microsecond) {
			return Timing{}, fmt.Errorf("timing item %q: bad microseconds", item)
		}
		d := time.Duration(us) * time.Microsecond
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "webgate":
			t.Webgate = d
		case "atom":
			t.Atom = d
		case "loader":
			t.Loader = d
		case "engine":
			t.Engine = d
		default:
			continue
		}
		t.Present = true
	}
	if !t.Present {
		return Timing{}, errors.New("timing: no known tier")
	}
	return t, nil
}
