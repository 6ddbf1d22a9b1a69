package source

import (
	"fmt"

	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/lbclient/balance"
	"google.golang.org/protobuf/proto"
)

// decodeEvent parses a NATS payload into a RegistryEvent.
func decodeEvent(data []byte) (*polarispb.RegistryEvent, error) {
	ev := &polarispb.RegistryEvent{}
	if err := proto.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("decode registry event (%d bytes): %w", len(data), err)
	}
	return ev, nil
}

// toInstance converts a registry InstanceState; ok is false when it lacks a service or
// an address. A missing or all-zero load reads as not live for a new loader (NoLoad: a
// known one keeps its load); a missing admin keeps the view's.
func toInstance(st *polarispb.InstanceState) (in balance.Instance, ok bool) {
	i := st.GetInstance()
	if i.GetService() == "" || i.GetAddr() == "" {
		return balance.Instance{}, false
	}
	in = balance.Instance{Service: i.GetService(), Addr: i.GetAddr(), Version: i.GetVersion(), Load: toLoad(st.GetLoad()), Seq: st.GetSeq(), NoLoad: noLoad(st.GetLoad())}
	if a := st.GetAdmin(); a != nil {
		in.Admin = &balance.Admin{Enabled: a.GetEnabled(), Weight: a.GetWeight()}
	}
	return in, true
}

// noLoad tells whether l carries no report: absent, or all zero, as polaris lists an
// instance restored from its store before its first heartbeat. A loader's own reports
// keep its licence total, even when it reports live=0.
func noLoad(l *polarispb.Load) bool {
	return l.GetTotal() == 0 && l.GetBest() == 0 && l.GetIdle() == 0 && l.GetLive() == 0
}

func toLoad(l *polarispb.Load) balance.Load {
	return balance.Load{Total: l.GetTotal(), Best: l.GetBest(), Idle: l.GetIdle(), Live: l.GetLive()}
}

// toSnapshot converts a List response, dropping entries without service or address and
// consumer registrations (only providers serve).
func toSnapshot(states []*polarispb.InstanceState) []balance.Instance {
	out := make([]balance.Instance, 0, len(states))
	for _, st := range states {
		if !isProvider(st) {
			continue
		}
		if in, ok := toInstance(st); ok {
			out = append(out, in)
		}
	}
	return out
}

// isProvider tells whether st is a provider; an empty kind counts as one.
func isProvider(st *polarispb.InstanceState) bool {
	k := st.GetInstance().GetKind()
	return k == "" || k == "provider"
}
