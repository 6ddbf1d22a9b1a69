package ctxfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSaveIsPrivateAndRoundTrips(t *testing.T) {
	p := filepath.Join(t.TempDir(), "asectl", "config.yaml")
	f, err := Load(p)
	if err != nil || len(f.Contexts) != 0 {
		t.Fatalf("missing file: %+v %v", f, err)
	}
	if _, _, err := f.Get(""); err == nil {
		t.Fatal("no current context accepted")
	}
	f.Contexts["local"] = &Context{Polaris: "http://127.0.0.1:8095", Token: "tok"}
	f.Current = "local"
	if err := f.Save(p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	g, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	c, name, err := g.Get("")
	if err != nil || name != "local" || c.Token != "tok" {
		t.Fatalf("%+v %s %v", c, name, err)
	}
	if err := os.WriteFile(p, []byte("contexts: [1"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil {
		t.Fatal("broken file accepted")
	}
}
