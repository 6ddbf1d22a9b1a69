package forward

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
)

// BenchmarkOnce is one forwarded once request against a local upstream that answers a
// fixed ASE response: mapping, JSON both ways, and the HTTP round trip on a kept-alive
// connection.
func BenchmarkOnce(b *testing.B) {
	for _, bc := range []struct{ name, spec string }{
		{"ase", `{upstreams: [%s]}`},
		{"mapped", `{upstreams: [%s], text: plain,
			request: {mapping: [{data_type: text, rule: [{src: $.payload.text.text, dst: $.body.q}, {src: $.parameter.translate.to, dst: $.query.to}]}]},
			response: {mapping: [{data_type: text, rule: [{src: $.body.payload.result.text, dst: $.payload.result.text}]}]}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				fmt.Fprint(w, `{"header":{"code":0,"status":3},"payload":{"result":{"encoding":"utf8","text":"Ym9uam91cg=="}}}`)
			}))
			defer srv.Close()
			s, err := ParseSpec([]byte(fmt.Sprintf(bc.spec, srv.URL)), nil)
			if err != nil {
				b.Fatal(err)
			}
			e := New(Options{Spec: s, Licence: 4, Log: zerolog.Nop()})
			_ = e.Init(context.Background(), nil)
			defer e.Fini(context.Background())
			req := textReq("hello")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := e.Once(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
