package layering

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Prefix is the import path every module of the repository starts with.
const Prefix = "github.com/athenaserving/asf/"

// Adapters are the packages under services/ that are not domain packages although they are
// neither the root package, cmd/, transport/ nor test support: each talks to another process.
var Adapters = map[string]string{
	"services/lbclient/source":       "reads polaris over gRPC and the load events over NATS",
	"services/polaris/adminapi":      "the admin HTTP API",
	"services/polaris/console":       "the web console over HTTP",
	"services/polaris/store/consul":  "the Consul backend, an HTTP client",
	"services/loader/engine/forward": "an engine that forwards requests to an HTTP service",
}

// transportImports are the imports a domain package may not have (an import path equal to
// one of them or below it): HTTP, gRPC, NATS and WebSocket (webgate's gate decides for its
// WebSocket adapter, transport/ws, and must not reach for the socket itself).
var transportImports = []string{"net/http", "google.golang.org/grpc", "github.com/nats-io/", "github.com/gorilla/websocket"}

// Package is one package as `go list -json` reports it.
type Package struct {
	ImportPath   string
	Name         string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// Violation is one broken rule.
type Violation struct {
	Package, Import, Rule string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s imports %s: %s", v.Package, v.Import, v.Rule)
}

// rel is the path of an import inside the repository ("services/atom/route"), or "" when it
// is not one of the repository's packages.
func rel(importPath string) string {
	if !strings.HasPrefix(importPath, Prefix) {
		return ""
	}
	return strings.TrimPrefix(importPath, Prefix)
}

// service is the service a repository path belongs to ("atom" for services/atom/route).
func service(relPath string) string {
	parts := strings.Split(relPath, "/")
	if len(parts) < 2 || parts[0] != "services" {
		return ""
	}
	return parts[1]
}

// Domain reports whether a repository package is a domain package of its service.
func Domain(relPath, name string) bool {
	svc := service(relPath)
	if svc == "" {
		return false
	}
	inner := strings.TrimPrefix(relPath, "services/"+svc)
	inner = strings.TrimPrefix(inner, "/")
	switch {
	case inner == "": // the root package: binds listeners, wires the adapters
		return false
	case inner == "cmd" || strings.HasPrefix(inner, "cmd/"):
		return false
	case inner == "transport" || strings.HasPrefix(inner, "transport/"):
		return false
	case strings.HasSuffix(name, "test"): // test support: starts real servers, fakes peers
		return false
	}
	if _, ok := Adapters[relPath]; ok {
		return false
	}
	return true
}

func isTransport(imp string) bool {
	for _, t := range transportImports {
		if imp == strings.TrimSuffix(t, "/") || strings.HasPrefix(imp, strings.TrimSuffix(t, "/")+"/") {
			return true
		}
	}
	return false
}

// Check returns every rule the packages break, sorted.
func Check(pkgs []Package) []Violation {
	var out []Violation
	for _, p := range pkgs {
		r := rel(p.ImportPath)
		if r == "" {
			continue
		}
		top := strings.SplitN(r, "/", 2)[0]
		svc := service(r)
		all := append(append(append([]string{}, p.Imports...), p.TestImports...), p.XTestImports...)
		for _, imp := range all {
			ir := rel(imp)
			if ir == "" {
				continue
			}
			itop := strings.SplitN(ir, "/", 2)[0]
			switch {
			case (top == "libs" || top == "sdk") && itop != "libs" && itop != top:
				out = append(out, Violation{r, ir, top + " imports only libs"})
			case svc != "" && itop != "libs" && itop != "sdk" && service(ir) != svc:
				out = append(out, Violation{r, ir, "a service imports only libs, sdk and itself"})
			}
		}
		if !Domain(r, p.Name) {
			continue
		}
		for _, imp := range p.Imports { // production code only: a domain test may fake a peer
			ir := rel(imp)
			switch {
			case isTransport(imp):
				out = append(out, Violation{r, imp, "a domain package imports no transport"})
			case ir != "" && service(ir) == svc && !Domain(ir, lastElem(ir)) && !strings.HasSuffix(lastElem(ir), "test"):
				out = append(out, Violation{r, ir, "a domain package imports no adapter of its service"})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func lastElem(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// RepoRoot is the directory holding go.work, found from the working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory")
		}
		dir = parent
	}
}

// Modules lists the directories of the modules go.work uses.
func Modules(root string) ([]string, error) {
	out, err := goCmd(root, "list", "-m", "-f", "{{.Dir}}")
	if err != nil {
		return nil, err
	}
	var dirs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if d := strings.TrimSpace(sc.Text()); d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs, sc.Err()
}

// List runs `go list -json` on every package of a module.
func List(dir string) ([]Package, error) {
	out, err := goCmd(dir, "list", "-e", "-json=ImportPath,Name,Imports,TestImports,XTestImports", "./...")
	if err != nil {
		return nil, err
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs, nil
		} else if err != nil {
			return nil, fmt.Errorf("decode go list output of %s: %w", dir, err)
		}
		pkgs = append(pkgs, p)
	}
}

func goCmd(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s in %s: %w: %s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return out, nil
}
