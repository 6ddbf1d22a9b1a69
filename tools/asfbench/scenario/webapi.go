package scenario

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/athenaserving/asf/libs/polarisclient"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/tools/asfbench"
	"github.com/athenaserving/asf/tools/asfbench/report"
	"github.com/athenaserving/asf/tools/asfbench/targets"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// webapiSystem names the WebAPI 2.0 once rows of scenario 1.
const webapiSystem = "suite WebAPI 2.0"

// webapiRoute is the WebAPI 2.0 route of the echo capability.
const webapiRoute = "/v2/echo"

// webapiEchoSchema gives the echo capability a WebAPI 2.0 route and nothing else (no
// schemainput: requests are not validated, as on the ASE rows): data.text is the input,
// the echoed input is data.result.
const webapiEchoSchema = `{
  "meta": {"serviceId": "echo", "version": "v1.0", "service": ["echo"]},
  "webapi": {
    "route": "` + webapiRoute + `",
    "request": {"data": {"mapping": [{"data_type": "text", "rule": [
      {"src": "$.data.text", "dst": "$.payload.input.text"},
      {"value": "utf8", "dst": "$.payload.input.encoding"}]}]}},
    "response": {"data": {"mapping": [{"data_type": "text", "rule": [
      {"src": "$.payload.input.text", "dst": "$.data.result"}]}]}}
  }
}`

func (e *Env) webapiTarget(base string, c int) *targets.ASEOnce {
	return targets.NewWebAPIOnce(targets.ASEOnceConfig{BaseURL: base, Service: "echo", AppID: e.AppID,
		Creds: e.Creds, PayloadSize: e.Profile.OncePayload, MaxConns: c}, webapiRoute)
}

// runWebAPIOnce adds the WebAPI 2.0 once rows to scenario 1: the ASE rows' load on the
// same suite, in the WebAPI 2.0 envelope on /v2/echo, against the same bare Go echo rows
// and the same targets. The echo schema with a webapi block is pushed first.
func runWebAPIOnce(ctx context.Context, env *Env, s Suite, sc *report.Scenario) error {
	why := ""
	if s != nil {
		env.logf("once: publishing the echo schema with a webapi block")
		if err := publishWebAPIEcho(ctx, env, s); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			why = fmt.Sprintf("the WebAPI 2.0 route was not served: %v", err)
			env.logf("once: %s", why)
		}
	}
	for _, c := range env.Profile.OnceConcurrency {
		load, x := asfbench.Load{Concurrency: c}, float64(c)
		sd := env.suiteSide(s, webapiSystem, bareEcho, func() asfbench.Target { return env.webapiTarget(s.WebgateURL(), c) })
		if why != "" {
			sd = side{system: webapiSystem, vs: bareEcho, why: why}
		}
		if err := env.measureSide(ctx, sc, env.Profile.Plan, x, load, sd); err != nil {
			return err
		}
	}
	sc.Targets = append(sc.Targets, onceTargetsOf(sc, env, webapiSystem, "webgate WebAPI 2.0 once")...)
	return nil
}

// publishWebAPIEcho pushes webapiEchoSchema to polaris as an operator does (the admin
// token) and waits until webgate answers a WebAPI 2.0 request on the route.
func publishWebAPIEcho(ctx context.Context, env *Env, s Suite) error {
	opt, err := s.DialOption("polaris")
	if err != nil {
		return err
	}
	c, err := polarisclient.DialWith(s.PolarisAddr(), polarisclient.Options{Log: zerolog.Nop(), DialOptions: []grpc.DialOption{opt}})
	if err != nil {
		return err
	}
	defer c.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if tok := s.AdminToken(); tok != "" {
		pctx = metadata.AppendToOutgoingContext(pctx, "authorization", "Bearer "+tok)
	}
	key := &polarispb.ConfigKey{Project: "asf", Group: "default", Service: "capabilities", Version: "v1", File: "schema_echo.json"}
	if _, err := c.Config.Push(pctx, &polarispb.PushConfigRequest{Key: key, Content: []byte(webapiEchoSchema), Comment: "asfbench WebAPI 2.0 rows"}); err != nil {
		return fmt.Errorf("push the echo schema: %w", err)
	}
	t := env.webapiTarget(s.WebgateURL(), 1)
	defer t.Close()
	d, err := t.NewDoer(ctx, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := d.Do(wctx)
		if err == nil {
			return nil
		}
		select {
		case <-tick.C:
		case <-wctx.Done():
			return errors.Join(err, wctx.Err())
		}
	}
}
