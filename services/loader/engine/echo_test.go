package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
)

func initEcho(t *testing.T) Engine {
	t.Helper()
	e, err := Lookup("echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Init(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEchoOnceKeepsInputs(t *testing.T) {
	e := initEcho(t)
	in := []Payload{
		{Meta: Meta{Name: "a", Type: DataText, Attrs: map[string]string{"encoding": "utf8"}}, Data: []byte("hi")},
		{Meta: Meta{Name: "b", Type: DataAudio}, Data: []byte{1, 2}},
	}
	resp, err := e.Once(context.Background(), Request{Inputs: in})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Outputs) != 2 || resp.Outputs[0].Name != "a" || string(resp.Outputs[0].Data) != "hi" ||
		resp.Outputs[0].Attrs["encoding"] != "utf8" || resp.Outputs[1].Name != "b" || resp.Outputs[1].Type != DataAudio {
		t.Fatalf("outputs = %+v", resp.Outputs)
	}
}

func TestEchoOnceSingleExpectRenamesAndOverlays(t *testing.T) {
	e := initEcho(t)
	in := []Payload{{Meta: Meta{Name: "text", Attrs: map[string]string{"encoding": "utf8", "k": "in"}}, Data: []byte("x")}}
	expect := []Meta{{Name: "result", Attrs: map[string]string{"k": "out"}}}
	resp, err := e.Once(context.Background(), Request{Inputs: in, Expect: expect})
	if err != nil {
		t.Fatal(err)
	}
	o := resp.Outputs[0]
	if o.Name != "result" || o.Attrs["k"] != "out" || o.Attrs["encoding"] != "utf8" {
		t.Fatalf("output = %+v", o)
	}
	if in[0].Attrs["k"] != "in" {
		t.Fatal("echo modified the caller's input attributes")
	}
}

func TestEchoSessionMirrorsStatus(t *testing.T) {
	e := initEcho(t)
	var got []Result
	s, err := e.NewSession(context.Background(), SessionParams{Tag: "s"}, func(r Result) { got = append(got, r) })
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range []Status{StatusBegin, StatusContinue, StatusEnd} {
		if err := s.Write(context.Background(), Frame{SyncID: int32(i), Status: st, Inputs: []Payload{{Meta: Meta{Name: "a"}, Data: []byte{byte(i)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 3 || got[0].Status != StatusBegin || got[1].Status != StatusContinue || got[2].Status != StatusEnd || got[2].Outputs[0].Data[0] != 2 {
		t.Fatalf("results = %+v", got)
	}
	if err := s.Write(context.Background(), Frame{SyncID: 3}); !errors.Is(err, aserr.ErrInvalidOp) {
		t.Fatalf("write after end: %v", err)
	}
	_ = s.Close()
}

func TestEchoAfterFini(t *testing.T) {
	e := initEcho(t)
	_ = e.Fini(context.Background())
	if _, err := e.Once(context.Background(), Request{}); aserr.CodeOf(err) != 10101 {
		t.Fatalf("once after fini: %v", err)
	}
}

func TestLookupUnknown(t *testing.T) {
	if _, err := Lookup("nope"); err == nil {
		t.Fatal("unknown engine accepted")
	}
}

func TestCheckOutputs(t *testing.T) {
	outs := []Payload{{Meta: Meta{Name: "a"}}}
	if err := CheckOutputs(nil, outs); err != nil {
		t.Fatal(err)
	}
	if err := CheckOutputs([]Meta{{Name: "a"}, {Name: "b"}}, outs); err != nil {
		t.Fatal(err)
	}
	if err := CheckOutputs([]Meta{{Name: "x"}, {Name: "y"}}, outs); aserr.CodeOf(err) != 10106 {
		t.Fatalf("unexpected output: %v, want 10106", err)
	}
}
