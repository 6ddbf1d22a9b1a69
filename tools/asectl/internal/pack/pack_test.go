package pack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestContextOfAnAigesTomlAndAWrapper(t *testing.T) {
	src := t.TempDir()
	for name, body := range map[string]string{"aiges.toml": "[cap]\nfinder = 0\n", "wrapper.py": "# engine\n", "out/junk": "x", ".git/HEAD": "x"} {
		p := filepath.Join(src, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	files, err := Context(Engine{Path: filepath.Join(src, "aiges.toml"), Kind: "toml", Service: "cap"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(files, ","); got != "Dockerfile,engine/aiges.toml,engine/wrapper.py" {
		t.Fatalf("files %s", got)
	}
	df, _ := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if !strings.Contains(string(df), `CMD ["-c", "/opt/asf/engines/cap/aiges.toml", "-s", "cap"]`) {
		t.Fatalf("Dockerfile:\n%s", df)
	}
	dir2 := t.TempDir()
	if _, err := Context(Engine{Path: filepath.Join(src, "wrapper.py"), Kind: "python", Service: "cap"}, dir2); err != nil {
		t.Fatal(err)
	}
	df, _ = os.ReadFile(filepath.Join(dir2, "Dockerfile"))
	if !strings.Contains(string(df), "ASF_LOADER_ENGINE_PATH=/opt/asf/engines/cap/wrapper.py") {
		t.Fatalf("Dockerfile:\n%s", df)
	}
	if _, err := Context(Engine{Path: src, Kind: "rust", Service: "cap"}, t.TempDir()); err == nil {
		t.Fatal("unknown kind accepted")
	}
}
