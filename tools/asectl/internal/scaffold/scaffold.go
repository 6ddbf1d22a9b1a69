// Package scaffold writes a new engine project: the engine (a Python wrapper on the aiges
// SDK, or a C library on the AIGES ABI with the loader's headers), its capability schema,
// aiges.toml, a Makefile driving asectl, and a Dockerfile for its loader image.
//
//	files, err := scaffold.New("greeter", scaffold.Python, "./greeter")
package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
)

// Languages of an engine project.
const (
	Python = "python"
	C      = "c"
)

//go:embed templates
var templates embed.FS

// nameRE is what a service name may be: it becomes a route segment, a schema key, a
// TOML section and an image name.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// CheckName reports whether name can name an engine's service.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("engine name %q: use a lower-case letter, then up to 62 lower-case letters, digits or '-' (it becomes the service id and route /v1/private/<name>)", name)
	}
	return nil
}

// ErrExists is returned when the project directory exists and is not empty.
var ErrExists = errors.New("directory exists and is not empty")

// New writes the project of engine name in language lang (Python or C) into dir, which
// must not exist or be empty, and returns the files written (relative to dir, sorted).
func New(name, lang, dir string) ([]string, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if lang != Python && lang != C {
		return nil, fmt.Errorf("language %q: want python or c", lang)
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%s: %w: choose another --dir or remove it", dir, ErrExists)
	}
	files, err := Render(name, lang)
	if err != nil {
		return nil, err
	}
	var names []string
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(rel, ".py") {
			mode = 0o755
		}
		if err := os.WriteFile(p, content, mode); err != nil {
			return nil, err
		}
		names = append(names, rel)
	}
	sort.Strings(names)
	return names, nil
}

// Render returns the project's files by relative path without writing them.
func Render(name, lang string) (map[string][]byte, error) {
	data := struct{ Name, Lang string }{name, lang}
	out := map[string][]byte{}
	for _, root := range []string{"templates/common", "templates/" + lang} {
		err := fs.WalkDir(templates, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel := strings.TrimPrefix(p, root+"/")
			b, err := templates.ReadFile(p)
			if err != nil {
				return err
			}
			if strings.HasSuffix(rel, ".tmpl") {
				rel = strings.TrimSuffix(rel, ".tmpl")
				t, err := template.New(rel).Option("missingkey=error").Parse(string(b))
				if err != nil {
					return err
				}
				var buf bytes.Buffer
				if err := t.Execute(&buf, data); err != nil {
					return err
				}
				b = buf.Bytes()
			}
			out[outName(rel, name)] = b
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("scaffold: %w", err)
		}
	}
	return out, nil
}

// outName maps a template's name to the project's file name.
func outName(rel, name string) string {
	switch rel {
	case "schema.json":
		return "schema_" + name + ".json"
	case "gitignore":
		return ".gitignore"
	case "dockerignore":
		return ".dockerignore"
	}
	return rel
}
