package aigestoml

import (
	"fmt"
	"strings"
)

// Flags are AIservice's command-line options (xsf's -m -c -p -g -s -u).
type Flags struct {
	// Mode is -m: 0 native (a local file), 1 centre (the config centre), 2 custom.
	Mode string
	// Config is -c: the aiges.toml (in native mode a local file).
	Config string
	// Project and Group are -p and -g: the config-centre project and group.
	Project, Group string
	// Service is -s: the service name, which also names its [<service>] section.
	Service string
	// URL is -u: the config centre's companion URL.
	URL string
}

// flagNames maps an AIservice flag name onto its Flags field.
var flagNames = map[string]func(*Flags) *string{
	"m": func(f *Flags) *string { return &f.Mode },
	"c": func(f *Flags) *string { return &f.Config },
	"p": func(f *Flags) *string { return &f.Project },
	"g": func(f *Flags) *string { return &f.Group },
	"s": func(f *Flags) *string { return &f.Service },
	"u": func(f *Flags) *string { return &f.URL },
}

// SplitArgs takes AIservice's flags out of args and returns the others in their order.
// Like Go's flag package (which AIservice uses) it accepts one or two dashes and
// "-c x" or "-c=x"; it stops at "--". A flag without its value is an error.
func SplitArgs(args []string) (Flags, []string, error) {
	var f Flags
	rest := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, ok := strings.CutPrefix(a, "-")
		if !ok || name == "" {
			rest = append(rest, a)
			continue
		}
		name = strings.TrimPrefix(name, "-")
		name, val, hasVal := strings.Cut(name, "=")
		field, known := flagNames[name]
		if !known {
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return Flags{}, nil, fmt.Errorf("flag -%s needs a value: %w", name, ErrFile)
			}
			i++
			val = args[i]
		}
		*field(&f) = val
	}
	return f, rest, nil
}

// Warnings reports the flags that have no effect in this loader: a mode other than 0
// (the file is read locally whatever the mode) and the config-centre flags.
func (f Flags) Warnings() []Warning {
	var out []Warning
	if m := strings.TrimSpace(f.Mode); m != "" && m != "0" {
		out = append(out, Warning{Keys: []string{"-m"}, Msg: "mode " + m + " has no effect: -c is read as a local file (mode 0, native)"})
	}
	var centre []string
	for _, c := range []struct{ name, v string }{{"-p", f.Project}, {"-g", f.Group}, {"-u", f.URL}} {
		if c.v != "" {
			centre = append(centre, c.name)
		}
	}
	if len(centre) > 0 {
		out = append(out, Warning{Keys: centre, Msg: "config-centre flags have no effect: the configuration is read from -c, YAML, env and flags"})
	}
	return out
}
