// Package ctxfile keeps asectl's contexts: where polaris's admin API and the edge are,
// with the token, TLS files and app credentials to use, in one file readable by its
// owner only (mode 0600), by default <user config dir>/asectl/config.yaml.
package ctxfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"go.yaml.in/yaml/v3"
)

// Context is one named target.
type Context struct {
	// Polaris is the admin API's base URL (polaris console-listen, e.g. http://127.0.0.1:8095).
	Polaris string `yaml:"polaris" json:"polaris"`
	// Token is the admin (or viewer) token.
	Token string `yaml:"token,omitempty" json:"token,omitempty"`
	// CA, Cert and Key are TLS files for an https admin API (Cert and Key for mutual TLS).
	CA   string `yaml:"ca,omitempty" json:"ca,omitempty"`
	Cert string `yaml:"cert,omitempty" json:"cert,omitempty"`
	Key  string `yaml:"key,omitempty" json:"key,omitempty"`
	// Webgate is the edge's base URL for `call`.
	Webgate string `yaml:"webgate,omitempty" json:"webgate,omitempty"`
	// PolarisGRPC is polaris's gRPC address, where `engine run` registers a loader.
	PolarisGRPC string `yaml:"polaris_grpc,omitempty" json:"polaris_grpc,omitempty"`
	// AppID, APIKey and APISecret sign `call` requests.
	AppID     string `yaml:"app_id,omitempty" json:"app_id,omitempty"`
	APIKey    string `yaml:"api_key,omitempty" json:"api_key,omitempty"`
	APISecret string `yaml:"api_secret,omitempty" json:"api_secret,omitempty"`
}

// File is the contexts file.
type File struct {
	Current  string              `yaml:"current" json:"current"`
	Contexts map[string]*Context `yaml:"contexts" json:"contexts"`
}

// DefaultPath is <user config dir>/asectl/config.yaml.
func DefaultPath() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory (set HOME or XDG_CONFIG_HOME, or use --config): %w", err)
	}
	return filepath.Join(d, "asectl", "config.yaml"), nil
}

// Load reads path; a missing file is an empty File.
func Load(path string) (*File, error) {
	f := &File{Contexts: map[string]*Context{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("contexts file %s: %w (fix or remove it, then asectl login)", path, err)
	}
	if f.Contexts == nil {
		f.Contexts = map[string]*Context{}
	}
	return f, nil
}

// Save writes f to path atomically with mode 0600 (its directory 0700).
func (f *File) Save(path string) error {
	b, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Names are the contexts' names, sorted.
func (f *File) Names() []string {
	out := make([]string, 0, len(f.Contexts))
	for n := range f.Contexts {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Get returns context name ("" = the current one).
func (f *File) Get(name string) (*Context, string, error) {
	if name == "" {
		name = f.Current
	}
	if name == "" {
		return nil, "", errors.New("no current context: run asectl login --polaris URL --token TOKEN first")
	}
	c := f.Contexts[name]
	if c == nil {
		return nil, name, fmt.Errorf("no context %q (asectl context ls lists them)", name)
	}
	return c, name, nil
}
