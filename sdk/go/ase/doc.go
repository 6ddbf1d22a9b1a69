// Package ase is a Go client for Athena Serving's public edge (webgate): the ASE protocol
// (once requests over HTTP, stream sessions over WebSocket, multiplexed sub-sessions on
// one socket) and iFLYTEK's WebAPI 2.0 envelope, with the ASE HMAC-SHA256 signatures
// (URL and header forms, body Digest).
//
//	c := ase.New("http://127.0.0.1:8889", ase.Credentials{AppID: "app1", APIKey: key, APISecret: secret})
//	resp, err := c.Once(ctx, "tts", ase.Request{
//	    Parameter: map[string]any{"voice": "en-us"},
//	    Payload:   []ase.Input{ase.Text("text", "hello")},
//	})
//	var e *ase.Error
//	if errors.As(err, &e) {
//	    fmt.Println(e.Code, e.Message, e.Sid) // the ASE code, its message and the request's sid
//	}
//	pcm := resp.Outputs["audio"].Data
//
// A Stream sends frames with statuses (StatusBegin, StatusContinue, StatusEnd) and
// receives results until the one with StatusEnd; a Mux carries many sub-sessions (header.cid)
// on one socket. Once retries a request refused with 10110 (no free engine licence).
// The protocol is described in docs/protocol.md.
package ase
