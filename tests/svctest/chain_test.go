package svctest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/athenaserving/asf/services/atom/atomtest"
	"github.com/athenaserving/asf/services/lbclient/lbclienttest"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/loader/loadertest"
	"github.com/athenaserving/asf/services/polaris/polaristest"
	"github.com/athenaserving/asf/services/webgate/webgatetest"
	"github.com/stretchr/testify/require"
)

// TestEveryServiceStartsFromItsTestPackage starts polaris, a loader, lbclient, atom and
// webgate from their test packages and sends one request through them all.
func TestEveryServiceStartsFromItsTestPackage(t *testing.T) {
	p := polaristest.Start(t)
	loadertest.Start(t, func(c *loader.Config) { c.PolarisAddr, c.Service = p.GRPCAddr(), "echo" })
	lb := lbclienttest.Start(t, p.GRPCAddr())
	testpoll.Until(t, 10*time.Second, "the loader in lbclient's view", func() bool {
		return lb.View().Live("echo", time.Now()) == 1
	})
	a := atomtest.Start(t, lb.GRPCAddr())
	w := webgatetest.Start(t, a.GRPCAddr())

	body := `{"header":{"app_id":"a","status":3},"payload":{"input":{"encoding":"utf8","status":3,"text":"aGk="}}}`
	resp, err := http.Post("http://"+w.HTTPAddr()+"/v1/private/echo", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	require.Contains(t, string(out), `"code":0`)
	require.Contains(t, string(out), `"text":"aGk="`)
}
