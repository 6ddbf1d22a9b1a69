package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
)

// Key names a config file in polaris: project/group/service/version/file.
type Key struct{ Project, Group, Service, Version, File string }

// String is the key's slash form.
func (k Key) String() string {
	return strings.Join([]string{k.Project, k.Group, k.Service, k.Version, k.File}, "/")
}

// Proto is the key on the wire.
func (k Key) Proto() *polarispb.ConfigKey {
	return &polarispb.ConfigKey{Project: k.Project, Group: k.Group, Service: k.Service, Version: k.Version, File: k.File}
}

// Item is one file to push.
type Item struct {
	Key  Key
	Path string
}

// ParseKey parses project/group/service/version/file: five non-empty parts without
// whitespace, "." or "..".
func ParseKey(s string) (Key, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 5 {
		return Key{}, fmt.Errorf("config key %q: want project/group/service/version/file", s)
	}
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || strings.ContainsAny(p, " \t\r\n\\") {
			return Key{}, fmt.Errorf("config key %q: bad part %q", s, p)
		}
	}
	return Key{parts[0], parts[1], parts[2], parts[3], parts[4]}, nil
}

// ParseFileFlag parses KEY=PATH.
func ParseFileFlag(s string) (Item, error) {
	k, path, ok := strings.Cut(s, "=")
	if !ok || path == "" {
		return Item{}, fmt.Errorf("--file %q: want KEY=PATH", s)
	}
	key, err := ParseKey(k)
	if err != nil {
		return Item{}, err
	}
	return Item{Key: key, Path: path}, nil
}

// ScanDir lists the regular files of dir at depth five (project/group/service/version/file),
// sorted by key; files at any other depth and dot-files are an error, so a misplaced file
// is not silently skipped.
func ScanDir(dir string) ([]Item, error) {
	var items []Item
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		// Kubernetes ConfigMap volumes add ..data links and dot-directories.
		if strings.HasPrefix(rel, "..") || strings.Contains(rel, "/..") || strings.HasPrefix(filepath.Base(rel), ".") {
			return nil
		}
		info, err := os.Stat(path)
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		key, err := ParseKey(rel)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		items = append(items, Item{Key: key, Path: path})
		return nil
	})
	sort.Slice(items, func(i, j int) bool { return items[i].Key.String() < items[j].Key.String() })
	return items, err
}
