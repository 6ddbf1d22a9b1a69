package worker

import (
	"bytes"
	"io"
	"sync"

	"github.com/rs/zerolog"
)

// lineLog writes each line a worker prints to the log.
type lineLog struct {
	log    zerolog.Logger
	stream string
	mu     sync.Mutex
	part   []byte
}

func newLineLog(log zerolog.Logger, stream string) *lineLog {
	return &lineLog{log: log, stream: stream}
}

const maxLogLine = 16 << 10

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.part = append(l.part, b...)
			if len(l.part) > maxLogLine {
				l.flush()
			}
			break
		}
		l.part = append(l.part, b[:i]...)
		l.flush()
		b = b[i+1:]
	}
	return n, nil
}

func (l *lineLog) flush() {
	if len(l.part) > 0 {
		l.log.Info().Str("stream", l.stream).Msg(string(l.part))
	}
	l.part = l.part[:0]
}

var _ io.Writer = (*lineLog)(nil)
