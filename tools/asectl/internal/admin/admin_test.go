package admin

import (
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A stand-in admin API behind TLS: the client trusts it only with its CA file, and sends
// the bearer token.
func TestTLSWithCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":10401,"status":401,"message":"unauthenticated"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"id":"t1","name":"ops","role":"admin"}`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{URL: srv.URL, Token: "tok", CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	if w, err := c.Whoami(t.Context()); err != nil || w.Role != "admin" {
		t.Fatalf("whoami with the CA: %+v %v", w, err)
	}
	plain, _ := New(Options{URL: srv.URL, Token: "tok"})
	if _, err := plain.Whoami(t.Context()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("without the CA the certificate is not trusted: %v", err)
	}
	bad, _ := New(Options{URL: srv.URL, Token: "nope", CA: ca})
	var ae *Error
	if _, err := bad.Whoami(t.Context()); !errors.As(err, &ae) || ae.Code != CodeUnauthorized {
		t.Fatalf("a wrong token: %v", err)
	}
	if _, err := New(Options{URL: "ftp://x"}); err == nil || !strings.Contains(err.Error(), "http://host:port") {
		t.Fatalf("bad URL: %v", err)
	}
	if _, err := New(Options{URL: srv.URL, CA: filepath.Join(t.TempDir(), "none")}); err == nil {
		t.Fatal("missing CA file accepted")
	}
}
