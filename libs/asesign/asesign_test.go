package asesign

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The expected signatures were computed with openssl (dgst -sha256 -hmac secret).
var when = time.Date(2019, 7, 10, 7, 35, 43, 0, time.UTC)

func TestSignURL(t *testing.T) {
	got, err := SignURL("ws://api.example.com:8080/v2/iat?x=1", "GET", Credentials{APIKey: "key", APISecret: "secret"}, when)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("x") != "1" || q.Get("host") != "api.example.com:8080" || q.Get("date") != "Wed, 10 Jul 2019 07:35:43 GMT" {
		t.Fatalf("query %v", q)
	}
	authz, err := base64.StdEncoding.DecodeString(q.Get("authorization"))
	if err != nil {
		t.Fatal(err)
	}
	want := `api_key="key", algorithm="hmac-sha256", headers="host date request-line", signature="YXX+irWjvzfhDQmqA4PYY1bpZgwjOr7StQczsOYPPZ0="`
	if string(authz) != want {
		t.Fatalf("authorization\n got %s\nwant %s", authz, want)
	}
}

func TestSignRequest(t *testing.T) {
	body := []byte(`{"a":1}`)
	req, err := http.NewRequest("POST", "http://api.example.com:8080/v1/private/echo", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	SignRequest(req, body, Credentials{APIKey: "key", APISecret: "secret"}, when)
	if d := req.Header.Get("Digest"); d != "SHA-256=AVq9f1zFei3ZS3WQ8ErYCEJzkF7jPsXOvq5iJ2qX+GI=" {
		t.Fatalf("digest %s", d)
	}
	if d := req.Header.Get("Date"); d != "Wed, 10 Jul 2019 07:35:43 GMT" {
		t.Fatalf("date %s", d)
	}
	a := req.Header.Get("Authorization")
	if !strings.HasPrefix(a, `hmac api_key="key", algorithm="hmac-sha256", headers="host date request-line digest", `) ||
		!strings.HasSuffix(a, `signature="OOXp9frj1x8bJ9iucXY00tLdhlR5vI8Tw9uRzch75vg="`) {
		t.Fatalf("authorization %s", a)
	}
}

func TestOriginWithoutDigest(t *testing.T) {
	o := Origin("api.example.com:8080", "Wed, 10 Jul 2019 07:35:43 GMT", "POST", "/v1/private/echo", "")
	if got := Signature("secret", o); got != "hNoiD2Sc/fsQ1/iJOXtCfOf0W+6cfL7UpvTkD9auTbQ=" {
		t.Fatalf("signature %s", got)
	}
}

func TestSignURLBad(t *testing.T) {
	if _, err := SignURL("http://[::1", "GET", Credentials{}, when); err == nil {
		t.Fatal("want an error for a bad URL")
	}
}
