package forward_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
)

// BenchmarkOnceThroughSuite compares a once request served by a local echo loader with
// one served by a forward loader calling a Go upstream on 127.0.0.1 (answering a fixed
// ASE response): the difference is the forwarding's cost, the upstream's own time aside.
func BenchmarkOnceThroughSuite(b *testing.B) {
	up := newUpstream(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, `{"header":{"code":0,"status":3},"payload":{"input":{"encoding":"utf8","text":"aGVsbG8="}}}`)
	}))
	spec := writeFile(b, "fwd.yaml", fmt.Sprintf("upstreams: [%s]\n", up))
	s := suitetest.Start(b, suitetest.Options{Loaders: 1, Service: "echo", Loader: forwardLoaders(1, "fwd", &spec)})
	s.AddLoader()
	testpoll.Until(b, 10*time.Second, "one live fwd loader", func() bool { return s.LB.Live("fwd") == 1 })
	c := s.Client()
	for _, capability := range []string{"echo", "fwd"} {
		b.Run(capability, func(b *testing.B) {
			f := asetest.Frame{Status: 3, Payload: text("hello")}
			for range b.N {
				r, err := c.Once(b.Context(), capability, f)
				if err != nil || r.Header.Code != 0 {
					b.Fatalf("%v %s", err, r.Raw)
				}
			}
		})
	}
}
