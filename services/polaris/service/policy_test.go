package service

import "testing"

func TestAddrMatches(t *testing.T) {
	for _, c := range []struct {
		instance, addr string
		want           bool
	}{
		{"10.0.0.7:5090", "10.0.0.7:5090", true},
		{"10.0.0.7", "10.0.0.7:5090", true},
		{"10.0.0.7", "10.0.0.8:5090", false},
		{"10.0.0.7:5090", "10.0.0.7:5091", false},
		{AnyInstance, "172.18.0.5:5090", true}, // a tier certificate shared by replicas
		{"", "10.0.0.7:5090", false},
		{AnyInstance, "", false},
		{"loader", "172.18.0.5:5090", false},
	} {
		if got := AddrMatches(c.instance, c.addr); got != c.want {
			t.Errorf("AddrMatches(%q, %q) = %v, want %v", c.instance, c.addr, got, c.want)
		}
	}
}
