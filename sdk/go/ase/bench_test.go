package ase_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/sdk/go/ase"
)

func BenchmarkSignURL(b *testing.B) {
	now := time.Now()
	for b.Loop() {
		if _, err := ase.SignURL("http://127.0.0.1:8889/v1/private/echo", "POST", demo, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignRequest(b *testing.B) {
	body := []byte(strings.Repeat("x", 1024))
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8889/v1/private/echo", nil)
	now := time.Now()
	for b.Loop() {
		ase.SignRequest(req, body, demo, now)
	}
}

func BenchmarkParseResponse(b *testing.B) {
	doc := []byte(`{"header":{"code":0,"message":"success","sid":"ase0001@test","status":3},"payload":{"result":{"encoding":"utf8","status":3,"text":"` +
		strings.Repeat("QUJD", 256) + `"}}}`)
	for b.Loop() {
		if _, err := ase.ParseResponse(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOnce(b *testing.B) {
	srv, _ := startEdge(b, demo)
	c := ase.New(srv.URL, demo)
	req := ase.Request{Payload: []ase.Input{ase.Text("input", "hello")}}
	for b.Loop() {
		if _, err := c.Once(b.Context(), "echo", req); err != nil {
			b.Fatal(err)
		}
	}
}
