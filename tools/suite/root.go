package suite

import (
	"errors"
	"os"
	"path/filepath"
)

// RepoRoot walks up from dir to the folder holding go.work: the repository root, where
// tests and tools find sdk/, examples/ and the Makefile.
func RepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above " + dir)
		}
		dir = parent
	}
}
