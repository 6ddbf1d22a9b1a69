// Package worker runs engines in supervised child processes and talks to them over a
// compact binary protocol on a Unix stream socket (a socketpair; the child's end is
// inherited as descriptor 3, named by ASF_WORKER_FD).
//
// Frames are uint32 length | uint8 type | uint64 id | body (big-endian; the length counts
// type, id and body). Bodies encode engine.Request/Response/SessionParams/Frame/Result and
// errors (int32 code + message) with length-prefixed strings and bytes and count-prefixed
// lists and maps: no JSON or base64 on the hot path.
//
// Parent side — an engine.Engine backed by N worker processes:
//
//	eng := worker.NewEngine(worker.Config{Name: "x", Command: []string{exe, "--worker"}, Size: 4, Log: log})
//	if err := eng.Init(ctx, cfg); err != nil { ... } // every worker started and initialised
//	resp, err := eng.Once(ctx, req)                   // least in-flight worker; 10109 if it dies, 10102 at the deadline
//	defer eng.Fini(ctx)
//
// Child side — host any engine.Engine:
//
//	if worker.IsChild() {
//	    conn, err := worker.ChildConn()
//	    if err != nil { ... }
//	    err = worker.Serve(ctx, conn, eng) // returns nil when the parent closes the socket
//	}
package worker
