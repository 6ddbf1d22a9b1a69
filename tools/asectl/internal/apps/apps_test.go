package apps

import (
	"errors"
	"strings"
	"testing"
)

func TestEditKeepsUnknownFieldsAndOrder(t *testing.T) {
	d, err := Parse([]byte(`[{"app_id":"b","api_key":"kb","api_secret":"sb","note":"kept"},{"app_id":"a","api_key":"ka","api_secret":"sa"}]`))
	if err != nil {
		t.Fatal(err)
	}
	qps, caps := 5.0, []string{"tts"}
	c, err := d.Create("c", Limits{QPS: &qps, Capabilities: &caps})
	if err != nil || c.APISecret == "" || c.APIKey == "" || c.QPS != 5 || c.Capabilities[0] != "tts" {
		t.Fatalf("create: %+v %v", c, err)
	}
	if _, err := d.Create("c", Limits{}); !errors.Is(err, ErrExists) {
		t.Fatalf("create twice: %v", err)
	}
	old := c.APIKey
	r, err := d.Rotate("c")
	if err != nil || r.APIKey == old {
		t.Fatalf("rotate: %+v %v", r, err)
	}
	off := true
	if a, err := d.SetLimits("a", Limits{Disabled: &off}); err != nil || !a.Disabled || a.APISecret != "" {
		t.Fatalf("limits: %+v %v", a, err)
	}
	if err := d.Delete("b"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete("b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	b, _ := d.Marshal()
	if !strings.HasPrefix(string(b), `{`+"\n"+`  "apps": [`) {
		t.Fatalf("marshal: %s", b)
	}
	d2, _ := Parse(b)
	list := d2.List(false)
	if len(list) != 2 || list[0].AppID != "a" || list[1].AppID != "c" || list[1].APISecret != "" {
		t.Fatalf("list: %+v", list)
	}
}

func TestRefusals(t *testing.T) {
	d, _ := Parse(nil)
	if _, err := d.Create("a b", Limits{}); err == nil {
		t.Fatal("id with a space accepted")
	}
	neg := -1
	if _, err := d.Create("x", Limits{MaxSessions: &neg}); err == nil || len(d.List(true)) != 0 {
		t.Fatalf("negative limit: %v", err)
	}
	if _, err := Parse([]byte(`{"apps": 3}`)); err == nil {
		t.Fatal("bad document accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"apps":[{"app_id":"a","api_key":"k","api_secret":"s"}]}`))
	f.Add([]byte(`[{"app_id":1}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		_ = d.List(true)
		if _, err := d.Marshal(); err != nil {
			t.Fatal(err)
		}
	})
}
