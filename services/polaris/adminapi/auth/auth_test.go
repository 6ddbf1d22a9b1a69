package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBootstrapOnceAndPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", FileName)
	st, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret, created, err := st.Bootstrap()
	if err != nil || !created || !strings.HasPrefix(secret, "plr_") {
		t.Fatalf("bootstrap: %q %v %v", secret, created, err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), secret) {
		t.Fatal("secret stored in clear")
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	tok, ok := st.Authenticate(secret)
	if !ok || tok.Role != RoleAdmin {
		t.Fatalf("authenticate: %+v %v", tok, ok)
	}
	if _, ok := st.Authenticate(secret + "x"); ok {
		t.Fatal("wrong secret accepted")
	}

	// A restart reads the file and does not bootstrap again.
	st2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, created, _ := st2.Bootstrap(); created {
		t.Fatal("bootstrapped twice")
	}
	if _, ok := st2.Authenticate(secret); !ok {
		t.Fatal("token lost across restart")
	}
}

func TestCreateRevoke(t *testing.T) {
	st, _ := Open(filepath.Join(t.TempDir(), FileName), nil)
	admin, _, _ := st.Bootstrap()
	a, _ := st.Authenticate(admin)
	if err := st.Revoke(a.ID); !errors.Is(err, ErrInvalid) {
		t.Fatalf("revoking the last admin: %v", err)
	}
	vs, vt, err := st.Create("ci", RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	if tok, ok := st.Authenticate(vs); !ok || tok.Role.CanWrite() {
		t.Fatalf("viewer: %+v %v", tok, ok)
	}
	if _, _, err := st.Create("x", "root"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad role: %v", err)
	}
	if _, _, err := st.Create(" ", RoleViewer); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty name: %v", err)
	}
	if err := st.Revoke(vt.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Authenticate(vs); ok {
		t.Fatal("revoked token accepted")
	}
	if err := st.Revoke(vt.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
	if n := len(st.List()); n != 1 {
		t.Fatalf("list: %d", n)
	}
}

func TestCorruptFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte(`{"version":1,"tokens":[{"id":"a","role":"admin","sha256":"zz"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open corrupt: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":1,"tokens":[]}`))
	f.Add([]byte(`{"version":1,"tokens":[{"id":"a","name":"n","role":"viewer","sha256":"` + strings.Repeat("ab", 32) + `"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`nul`))
	f.Fuzz(func(t *testing.T, b []byte) {
		toks, err := Decode(b)
		if err != nil {
			return
		}
		for _, tk := range toks {
			if tk.ID == "" || !tk.Role.Valid() || len(tk.SHA256) != 64 {
				t.Fatalf("accepted bad entry %+v", tk)
			}
		}
	})
}

func TestSeededToken(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Seed("short"); err == nil {
		t.Fatal("a short admin token was accepted")
	}
	const secret = "operator-provided-admin-token-0123456789"
	if err := s.Seed(secret); err != nil {
		t.Fatal(err)
	}
	if _, created, err := s.Bootstrap(); err != nil || created {
		t.Fatalf("a seeded store bootstrapped a token: %v %v", created, err)
	}
	tok, ok := s.Authenticate(secret)
	if !ok || tok.Role != RoleAdmin || tok.ID != SeededID {
		t.Fatalf("seeded token: %+v %v", tok, ok)
	}
	if _, ok := s.Authenticate(secret + "x"); ok {
		t.Fatal("a wrong token authenticated")
	}
	if _, ok := s.Get(SeededID); !ok {
		t.Fatal("seeded token not found by id")
	}
	if len(s.List()) != 0 {
		t.Fatal("the seeded token was stored")
	}
}
