package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestOwnIP(t *testing.T) {
	mk := func(s string) net.Addr { ip, n, _ := net.ParseCIDR(s); n.IP = ip; return n }
	cases := []struct {
		in   []net.Addr
		want string
	}{
		{[]net.Addr{mk("127.0.0.1/8"), mk("172.18.0.5/16")}, "172.18.0.5"},
		{[]net.Addr{mk("::1/128"), mk("fd00::5/64"), mk("10.1.2.3/8")}, "10.1.2.3"},
		{[]net.Addr{mk("fe80::1/64"), mk("fd00::5/64")}, "fd00::5"},
		{[]net.Addr{mk("127.0.0.1/8")}, ""},
	}
	for _, c := range cases {
		if got := OwnIP(c.in); got != c.want {
			t.Errorf("OwnIP(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestProbe(t *testing.T) {
	ready := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := probe([]string{"-q", srv.URL}, &out); err == nil {
		t.Fatal("probe of a 503 succeeded")
	}
	ready = true
	if err := probe([]string{srv.URL}, &out); err != nil || out.String() != "ok" {
		t.Fatalf("probe = %v, body %q", err, out.String())
	}
	if err := probe([]string{"http://127.0.0.1:1/readyz"}, &out); err == nil {
		t.Fatal("probe of a closed port succeeded")
	}
}
