package grpcx

import (
	"crypto/x509"
	"net/url"
	"testing"
)

func TestIdentityRoundTrip(t *testing.T) {
	id := Identity{Service: "loader", Instance: "10.0.0.7:5090"}
	got, ok := ParseIdentity(id.URI())
	if !ok || got != id {
		t.Fatalf("ParseIdentity(%s) = %+v, %v", id, got, ok)
	}
	c := &x509.Certificate{URIs: []*url.URL{{Scheme: "https", Host: "x"}, id.URI()}}
	if got, err := IdentityOfCert(c); err != nil || got != id {
		t.Fatalf("IdentityOfCert = %+v, %v", got, err)
	}
	for _, bad := range []string{"spiffe://other/loader/a", "spiffe://asf/loader", "spiffe://asf//a", "https://asf/loader/a"} {
		u, _ := url.Parse(bad)
		if _, ok := ParseIdentity(u); ok {
			t.Errorf("ParseIdentity(%s) accepted", bad)
		}
	}
	if _, err := IdentityOfCert(&x509.Certificate{}); err == nil {
		t.Error("certificate without identity accepted")
	}
}
