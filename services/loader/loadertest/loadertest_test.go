package loadertest

import (
	"testing"

	"github.com/athenaserving/asf/libs/grpcx"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	"github.com/athenaserving/asf/services/loader"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStart(t *testing.T) {
	s := Start(t, func(c *loader.Config) { c.Licence = 3 })
	if !s.Ready() {
		t.Fatal("not ready")
	}
	cc, err := grpcx.Dial(s.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	out, err := loaderpb.NewLoaderClient(cc).Once(t.Context(), &loaderpb.LoaderInput{
		Pl: []*loaderpb.Payload{{Meta: &loaderpb.MetaDesc{Name: "t"}, Data: []byte("x")}},
	})
	if err != nil || string(out.GetPl()[0].GetData()) != "x" {
		t.Fatalf("once: %v, %v", out, err)
	}
}
