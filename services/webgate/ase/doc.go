// Package ase converts between the public ASE JSON protocol (specs/ase-protocol.md) and the
// atom wire messages: it parses request frames, renders results and errors, maps ASE codes
// to HTTP statuses and generates session ids. It imports no transport.
//
//	sids := ase.NewSIDGen("dx", "10.0.0.1:8889")
//	f, err := ase.ParseFrame(body, "ist", ase.StatusOnce)
//	if err != nil {
//		code := aserr.CodeOf(err) // 10163
//		out := ase.AppendError(nil, code, aserr.MessageOf(err), sid)
//		_ = ase.HTTPStatus(code) // 400
//	}
//	f.Sid = sids.Next()
//	out := ase.DefaultRenderer().AppendResult(nil, res)
package ase
