package webapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/athenaserving/asf/tests/webapitest"
	"github.com/gorilla/websocket"
)

// aiaasRequest is the request type of iFLYTEK's Go SDK (iflytek/ase-sdk-go, AIaaSRequest).
type aiaasRequest struct {
	Common   map[string]interface{} `json:"common"`
	Business map[string]interface{} `json:"business"`
	Data     map[string]interface{} `json:"data"`
}

// sdkClient sends what the SDK's client sends: host is "127.0.0.1:port", uri the route.
type sdkClient struct {
	appid, apikey, apiSecret, host, uri string
}

// onceAIaaS is the SDK's OnceAIaaS: the request marshalled as is, POSTed to
// http://host+uri with Content-Type, Host, Date (UTC, RFC 1123), Digest ("SHA-256=" and
// the base64 SHA-256 of the body) and Authorization `hmac api_key="…",
// algorithm="hmac-sha256", headers="host date request-line digest", signature="…"`, the
// signature over "host: …\ndate: …\nPOST <uri> HTTP/1.1\ndigest: …". Like the SDK it
// fails unless the answer is HTTP 200, and returns the body.
func (c *sdkClient) onceAIaaS(data *aiaasRequest) ([]byte, error) {
	body, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	currentTime := time.Now().UTC().Format(time.RFC1123)
	sum := sha256.Sum256(body)
	digest := "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
	signatureStr := "host: " + c.host + "\n" + "date: " + currentTime + "\n" +
		http.MethodPost + " " + c.uri + " " + "HTTP/1.1" + "\n" + "digest: " + digest
	authHeader := fmt.Sprintf(`hmac api_key="%s", algorithm="%s", headers="host date request-line digest", signature="%s"`,
		c.apikey, "hmac-sha256", hmacSign(signatureStr, c.apiSecret))
	req, err := http.NewRequest(http.MethodPost, "http://"+c.host+c.uri, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Host = c.host
	req.Header.Set("Date", currentTime)
	req.Header.Set("Digest", digest)
	req.Header.Set("Authorization", authHeader)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("http_code: %d, http_msg: %s, body: %s", res.StatusCode, res.Status, string(b))
	}
	return b, nil
}

// signedWsURL is the SDK's buildSignedURL for GET: host, date and a base64 authorization
// (headers "host date request-line") as query parameters.
func (c *sdkClient) signedWsURL() string {
	now := time.Now().UTC().Format(time.RFC1123)
	signText := fmt.Sprintf("host: %s\ndate: %s\n%s %s HTTP/1.1", c.host, now, http.MethodGet, c.uri)
	urls := fmt.Sprintf("api_key=\"%s\", algorithm=\"%s\", headers=\"%s\", signature=\"%s\"", c.apikey,
		"hmac-sha256", "host date request-line", hmacSign(signText, c.apiSecret))
	v := url.Values{}
	v.Add("host", c.host)
	v.Add("date", now)
	v.Add("authorization", base64.StdEncoding.EncodeToString([]byte(urls)))
	return "ws://" + c.host + c.uri + "?" + v.Encode()
}

func hmacSign(data, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(data))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func newSDKClient(s *suitetest.Suite, uri string) *sdkClient {
	d := suitetest.DemoApp
	return &sdkClient{appid: d.AppID, apikey: d.APIKey, apiSecret: d.APISecret, host: strings.TrimPrefix(s.URL(), "http://"), uri: uri}
}

// TestOnceAIaaS: the request of the SDK's own translation example (common.status 3, the
// text base64 in data.text) succeeds on a WebAPI 2.0 route, and the answer is the
// envelope the SDK's examples read.
func TestOnceAIaaS(t *testing.T) {
	s := startEdge(t)
	cli := newSDKClient(s, "/v2/echo")
	text := "你好啊, 自由的世界!"
	resp, err := cli.onceAIaaS(&aiaasRequest{
		Common:   map[string]interface{}{"app_id": cli.appid, "status": 3},
		Business: map[string]interface{}{"from": "cn", "to": "en", "domain": "common"},
		Data:     map[string]interface{}{"text": base64.StdEncoding.EncodeToString([]byte(text))},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", resp)
	var r webapitest.Response
	if err := json.Unmarshal(resp, &r); err != nil {
		t.Fatal(err)
	}
	if r.Code != 0 || r.Message != "success" || !strings.HasPrefix(r.Sid, "ase") {
		t.Fatalf("answer %s", resp)
	}
	if got, err := r.Bytes("result"); err != nil || string(got) != text {
		t.Fatalf("data.result %s (%v), want the text back", r.Field("result"), err)
	}
	if r.Status() != 3 {
		t.Fatalf("data.status %d, want 3 (once)", r.Status())
	}
}

// TestSendAIaaS: the SDK's stream calls (SendAIaaS on a URL-signed WebSocket, frames with
// data.status 0, 1, 2 and common/business on every frame, Receive until data.status 2).
func TestSendAIaaS(t *testing.T) {
	s := startEdge(t)
	cli := newSDKClient(s, "/v2/echo")
	conn, resp, err := websocket.DefaultDialer.Dial(cli.signedWsURL(), nil)
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}
	defer conn.Close()
	for i, st := range []int{0, 1, 2} {
		if err := conn.WriteJSON(&aiaasRequest{
			Common:   map[string]interface{}{"app_id": cli.appid},
			Business: map[string]interface{}{"domain": "ist_mul_sp"},
			Data:     map[string]interface{}{"status": st, "text": base64.StdEncoding.EncodeToString([]byte(fmt.Sprint("frame-", i)))},
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; ; i++ {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		var r webapitest.Response
		if err := json.Unmarshal(msg, &r); err != nil || r.Code != 0 {
			t.Fatalf("receive %d: %s %v", i, msg, err)
		}
		if got, _ := r.Bytes("result"); string(got) != fmt.Sprint("frame-", i) || r.Status() != min(i, 2) {
			t.Fatalf("receive %d: %s", i, msg)
		}
		if r.Status() == 2 {
			return
		}
	}
}
