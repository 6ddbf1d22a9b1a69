package capability

import (
	"strings"
	"testing"
)

const webapiDoc = `{"meta":{"serviceId":"iat","version":"v1"%s},"webapi":%s}`

func TestWebAPIRouteAndRefusal(t *testing.T) {
	r := NewRegistry()
	good := strings.Replace(webapiDoc, "%s", "", 1)
	good = strings.Replace(good, "%s", `{"route":"/v2/iat/","request":{"data":{"mapping":{"data_type":"audio","rule":[{"src":"$.data.audio","dst":"$.payload.input.audio"}]}}}}`, 1)
	if _, err := r.Put("iat.json", 1, []byte(good)); err != nil {
		t.Fatal(err)
	}
	s, ok := r.ByWebAPIRoute("/v2/iat")
	if !ok || s.ID() != "iat" || s.WebAPI() == nil {
		t.Fatalf("ByWebAPIRoute = %v, %v", s, ok)
	}
	if _, ok := r.ByRoute("/v2/iat"); ok {
		t.Fatal("the WebAPI route answers as an ASE route")
	}
	// A bad rule is refused with the rule and the reason; the previous revision stays.
	bad := strings.Replace(webapiDoc, "%s", "", 1)
	bad = strings.Replace(bad, "%s", `{"route":"/v2/iat","request":{"data":{"mapping":{"data_type":"audio","rule":[{"src":"$.data.audio","dst":"$.payload.input.text"}]}}}}`, 1)
	_, err := r.Put("iat.json", 2, []byte(bad))
	if err == nil || !strings.Contains(err.Error(), `"dst":"$.payload.input.text"`) || !strings.Contains(err.Error(), "does not match data_type audio") {
		t.Fatalf("bad rule: %v", err)
	}
	if s, _ := r.Get("iat"); s.Revision() != 1 {
		t.Fatalf("revision %d after a refused push", s.Revision())
	}
	// Another capability may not take the WebAPI route, nor its ASE route.
	other := `{"meta":{"serviceId":"tts","route":"/v2/iat"}}`
	if _, err := r.Put("tts.json", 1, []byte(other)); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("route clash: %v", err)
	}
	same := `{"meta":{"serviceId":"x","route":"/v2/x"},"webapi":{"route":"/v2/x"}}`
	if _, err := Parse([]byte(same)); err == nil {
		t.Fatal("webapi.route equal to meta.route accepted")
	}
}
