// Package pack makes the Docker build context of an engine's loader image: the project's
// own Dockerfile when it has one, else a Dockerfile for the engine's kind on the
// project's loader image (build argument BASE, default asf/loader:dev).
//
//	files, err := pack.Context(pack.Engine{Path: "./greeter", Kind: "python", Service: "greeter", Schema: schemaFile}, dir)
package pack

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Engine is what is packed.
type Engine struct {
	// Path is the engine as given: a project directory, a wrapper.py, a .so or an aiges.toml.
	Path string
	// Kind is "python", "c" or "toml" (tools/suite's engine kinds).
	Kind string
	// Service is the service the image's loader serves.
	Service string
	// Schema is the engine's capability schema file, packed beside it.
	Schema string
}

// skipped are never copied into a context.
var skipped = map[string]bool{".git": true, "out": true, "__pycache__": true}

// Context writes the build context of e into dir (created if missing) and returns its
// files, relative and sorted.
func Context(e Engine, dir string) ([]string, error) {
	abs, err := filepath.Abs(e.Path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	project := abs
	if !st.IsDir() {
		project = filepath.Dir(abs)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(project, "Dockerfile")); err == nil && st.IsDir() {
		if err := copyTree(project, dir); err != nil {
			return nil, err
		}
		return list(dir)
	}
	dst := "/opt/asf/engines/" + e.Service
	var df string
	switch e.Kind {
	case "python", "toml":
		if err := copyTree(project, filepath.Join(dir, "engine")); err != nil {
			return nil, err
		}
	case "c":
		if err := copyFile(abs, filepath.Join(dir, "engine", filepath.Base(abs))); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("pack: engine kind %q: want python, c or toml", e.Kind)
	}
	if e.Schema != "" {
		if err := copyFile(e.Schema, filepath.Join(dir, "engine", "schema_"+e.Service+".json")); err != nil {
			return nil, err
		}
	}
	head := fmt.Sprintf("# The loader image of %s, made by asectl engine pack.\nARG BASE=asf/loader:dev\nFROM ${BASE}\nCOPY --chown=65532:65532 engine/ %s/\n", e.Service, dst)
	switch e.Kind {
	case "python":
		wrapper := "wrapper.py"
		if !st.IsDir() {
			wrapper = filepath.Base(abs)
		}
		df = head + fmt.Sprintf("ENV ASF_LOADER_SERVICE=%s \\\n    ASF_LOADER_ENGINE=python \\\n    ASF_LOADER_ENGINE_PATH=%s/%s\n", e.Service, dst, wrapper)
	case "c":
		df = head + fmt.Sprintf("ENV ASF_LOADER_SERVICE=%s \\\n    ASF_LOADER_ENGINE=c \\\n    ASF_LOADER_ENGINE_PATH=%s/%s\n", e.Service, dst, filepath.Base(abs))
	case "toml":
		df = head + fmt.Sprintf("WORKDIR %s\nCMD [\"-c\", \"%s/%s\", \"-s\", \"%s\"]\n", dst, dst, filepath.Base(abs), e.Service)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return nil, err
	}
	return list(dir)
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel != "." && skipped[d.Name()] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil // sockets, links: not part of an engine
		}
		return copyFile(p, filepath.Join(dst, rel))
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm()|0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func list(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(out)
	return out, err
}
