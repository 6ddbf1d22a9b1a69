// Package polaris is the embeddable polaris server: the service registry and the config
// center over gRPC, their events on NATS (an in-process NATS server by default), and the
// admin HTTP server.
//
//	cfg := polaris.DefaultConfig()
//	cfg.GRPCListen, cfg.AdminListen, cfg.NATSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
//	srv, err := polaris.New(cfg, log, obs.NewRegistry())
//	if err != nil { return err }
//	if err := srv.Start(ctx); err != nil { return err }
//	defer srv.Shutdown(context.Background())
//	conn := grpcx.Dial(srv.GRPCAddr())        // polarispb.NewRegistryClient(conn) ...
//	nc, _ := nats.Connect(srv.NATSURL())       // asf.registry.<svc>, asf.load.<svc>, asf.config.<svc>
//
// The domain lives in registry/ and config/ (no transport); transport/ adapts it to gRPC
// and NATS.
package polaris
