package transport

import (
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	"github.com/athenaserving/asf/services/lbclient/balance"
)

// droppedBuffer is how many drops a WatchDropped stream may lag behind; a watcher further
// behind misses the drops that do not fit (it still hears of later ones).
const droppedBuffer = 1024

// Dropped sends d to every WatchDropped stream open now. It never blocks (a view's
// OnDropped).
func (l *LB) Dropped(d balance.Dropped) {
	msg := &lbpb.Dropped{Service: d.Service, Addr: d.Addr, Reason: d.Reason}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	for ch := range l.watchers {
		select {
		case ch <- msg:
		default:
			l.dropsMissed.Inc()
		}
	}
}

// WatchDropped streams every loader dropped from rotation from now until the caller
// leaves or EndStreams is called.
func (l *LB) WatchDropped(_ *lbpb.WatchDroppedRequest, stream lbpb.Lb_WatchDroppedServer) error {
	ch := make(chan *lbpb.Dropped, droppedBuffer)
	l.wmu.Lock()
	if l.watchers == nil {
		l.watchers = map[chan *lbpb.Dropped]struct{}{}
	}
	l.watchers[ch] = struct{}{}
	l.wmu.Unlock()
	defer func() {
		l.wmu.Lock()
		delete(l.watchers, ch)
		l.wmu.Unlock()
	}()
	for {
		select {
		case d := <-ch:
			if err := stream.Send(d); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		case <-l.ending:
			return nil
		}
	}
}
