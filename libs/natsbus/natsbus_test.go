package natsbus

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEmbeddedPublishSubscribe(t *testing.T) {
	log := zerolog.Nop()
	emb, err := StartEmbedded("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	url := emb.ClientURL()
	if url == "" || url == "nats://127.0.0.1:0" {
		t.Fatalf("bad client url %q", url)
	}
	nc, err := Connect(url, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(LoadSubject("asf", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(LoadSubject("asf", "echo"), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "asf.load.echo" || string(msg.Data) != "hi" {
		t.Fatalf("got %s %q", msg.Subject, msg.Data)
	}
}

func TestEmbeddedBadListen(t *testing.T) {
	if _, err := StartEmbedded("nohostport", zerolog.Nop()); err == nil {
		t.Fatal("want error for a listen address without a port")
	}
}

func TestSubjects(t *testing.T) {
	cases := []struct{ got, want string }{
		{LoadSubject("asf", "echo"), "asf.load.echo"},
		{RegistrySubject("x", "a.b"), "x.registry.a_b"},
		{ConfigSubject("asf", ""), "asf.config.*"},
		{ConfigSubject("", "svc"), "asf.config.svc"},
		{RegistrySubject("asf", ">"), "asf.registry.>"},
		{LoadSubject("asf", "a*b c"), "asf.load.a_b_c"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q want %q", c.got, c.want)
		}
	}
}

func FuzzSubject(f *testing.F) {
	for _, s := range []string{"echo", "", "*", ">", "a.b", "a b", "x>y*z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, svc string) {
		got := RegistrySubject("asf", svc)
		tok := strings.TrimPrefix(got, "asf.registry.")
		if tok == got || tok == "" || strings.ContainsAny(tok, ". \t\r\n") {
			t.Fatalf("service %q gave subject %q: not one token", svc, got)
		}
		if strings.ContainsAny(tok, "*>") && tok != "*" && tok != ">" {
			t.Fatalf("service %q gave a partial wildcard %q", svc, got)
		}
	})
}
