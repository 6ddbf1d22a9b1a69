package cabi

import (
	"strconv"
	"sync"

	"github.com/athenaserving/asf/services/loader/engine"
)

// target is what an engine callback addresses through its usrTag: an async once request
// (once != nil) or an async session (emit != nil). Callbacks carry only the usrTag
// string, never a Go pointer, so every live tag is registered here.
type target struct {
	eng  *Engine
	once chan onceResult // buffered 1
	emit engine.Emit
}

type onceResult struct {
	outs []engine.Payload
	err  error
}

// tagTable maps the usrTag strings handed to engines to their targets. Tags are made
// unique: a tag already in use gets a "#n" suffix.
type tagTable struct {
	mu  sync.Mutex
	m   map[string]*target
	seq uint64
}

var tags = &tagTable{m: map[string]*target{}}

// add registers t under tag, or under a unique variant of it, and returns the key used.
func (tt *tagTable) add(tag string, t *target) string {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	key := tag
	for {
		if _, busy := tt.m[key]; !busy && key != "" {
			break
		}
		tt.seq++
		key = tag + "#" + strconv.FormatUint(tt.seq, 10)
	}
	tt.m[key] = t
	return key
}

func (tt *tagTable) get(key string) *target {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.m[key]
}

// take removes and returns the target of key (nil when gone).
func (tt *tagTable) take(key string) *target {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	t := tt.m[key]
	delete(tt.m, key)
	return t
}

func (tt *tagTable) remove(key string) {
	tt.mu.Lock()
	delete(tt.m, key)
	tt.mu.Unlock()
}

// size is the number of live tags.
func (tt *tagTable) size() int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return len(tt.m)
}
