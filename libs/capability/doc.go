// Package capability parses capability schema documents (specs/ase-protocol.md §4), compiles
// their schemainput once per revision, and keeps the current set in a Registry. Package
// capwatch feeds a Registry from the polaris config center. It knows nothing of HTTP, gRPC or
// of any one service.
//
//	reg := capability.NewRegistry()
//	sch, err := reg.Put("schema_ist.json", 1, data) // capwatch does this for every revision
//	sch, ok := reg.ByRoute("/v1/private/ist")       // or reg.Get("ist")
//	if err := sch.ValidateJSON(body); err != nil { /* 10163, err.Error() */ }
//	first := capability.DecodeMembers(body, "header", "parameter") // a session's first message
//	err = sch.ValidateOver(later, first, []string{"header", "parameter"}) // a later one, merged
//	dt, _ := sch.InputType("input")         // capability.DataAudio
//	_ = sch.OutputAttrType("result", "seq") // capability.AttrNumber
package capability
