// Package balance is lbclient's domain: the in-memory view of every loader's load and
// admin state, and the strategies that rank loaders for a Pick. It imports no transport;
// callers feed it registry and load events and pass the current time explicitly, so
// tests are deterministic.
//
//	v, err := balance.NewView(balance.Options{StaleAfter: 3 * time.Second,
//	    Strategies: map[string]string{"tts": balance.StrategyConsistentHash}})
//	v.Apply(snapshot, now)                        // full registry snapshot
//	v.Report("echo", "10.0.0.1:5090", balance.Load{Total: 4, Idle: 4, Live: 1}, 7, now)
//	addrs, err := v.Pick("echo", 3, nil, "", now) // best first
//	switch aserr.CodeOf(err) {
//	case 10404: // service never seen
//	case 10223: // no loader in rotation
//	}
//	v.Sweep(now)                                  // forget loaders silent for long
package balance
