// Package forward is the loader's forward engine: a capability served by a third-party
// API instead of a local engine. Once requests become HTTP(S) calls and sessions become
// WebSocket sessions, frame by frame; the spec (YAML or JSON, ParseSpec) names the
// upstream URLs, method, timeout, retries, headers and auth (a static header, a bearer
// token, or iFLYTEK's HMAC signature, the Go SDK's signer, sdk/go/ase), and maps requests and answers with
// the rule language of the WebAPI 2.0 envelope (libs/capability/mapping).
//
// The engine side of every mapping is an ASE document ({"header","parameter","payload"}),
// so without rules a forward loader fronts another ASF deployment as it is. Upstream
// failures carry their own codes (10224 unreachable, 10225 timeout, 10226 error status,
// 10227 session closed early, 10160 malformed answer); the loader's licence bounds the
// concurrent upstream calls (10110 when full). Unlike the other engines it speaks HTTP
// and WebSocket: that is what it is for.
//
//	spec, err := forward.ReadSpec("/etc/asf/translate.yaml", os.Getenv) // 10107 when bad
//	e := forward.New(forward.Options{Spec: spec, Service: "translate", Licence: 16, Log: log, Registry: reg})
//	_ = e.Init(ctx, nil)
//	resp, err := e.Once(ctx, engine.Request{Inputs: in}) // one upstream call (retried on connect errors, 5xx)
//	s, err := e.NewSession(ctx, engine.SessionParams{Tag: sid}, emit) // one upstream WebSocket
//	_ = s.Write(ctx, engine.Frame{Status: engine.StatusEnd, Inputs: in}) // one message; results come to emit
//	_ = s.Close()
//	_ = e.Fini(ctx)
package forward
