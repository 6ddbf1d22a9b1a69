// Package capability parses capability schema documents (specs/ase-protocol.md §4), compiles
// their schemainput once per revision, and keeps the current set in a Registry fed from the
// polaris config center by a Watcher. It knows nothing of HTTP or of any one service.
//
//	reg := capability.NewRegistry()
//	w := capability.NewWatcher(polaris.Config, reg, nil, capability.WatchOptions{
//	    Caller: &polarispb.Caller{Addr: myAddr}}, log)
//	go w.Run(ctx)          // until ctx ends; reconnects with backoff
//	<-w.Synced()           // first snapshot applied
//	sch, ok := reg.ByRoute("/v1/private/ist") // or reg.Get("ist")
//	if err := sch.ValidateJSON(body); err != nil { /* 10163, err.Error() */ }
//	dt, _ := sch.InputType("input")           // capability.DataAudio
//	_ = sch.OutputAttrType("result", "seq")   // capability.AttrNumber
package capability
