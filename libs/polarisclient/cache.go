package polarisclient

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
)

// Cache kinds.
const (
	kindRegistry = "registry"
	kindConfig   = "config"
)

// errCorrupt marks a cache file that does not decode.
var errCorrupt = errors.New("corrupt cache entry")

// cacheEntry is one cache file: a protobuf payload (ListResponse or ConfigFile) with
// its SHA-256, so a truncated or edited file is detected, not trusted.
type cacheEntry struct {
	V       int       `json:"v"`
	Kind    string    `json:"kind"`
	Name    string    `json:"name"`
	Saved   time.Time `json:"saved"`
	Payload []byte    `json:"payload"`
	Sum     string    `json:"sum"`
}

// diskCache keeps the last known registry snapshots and applied config files in a
// directory, one file each, written atomically (temp file + fsync + rename). A nil
// *diskCache caches nothing.
type diskCache struct {
	dir string
	log zerolog.Logger
}

func cacheName(kind, name string) string {
	h := sha256.Sum256([]byte(kind + "\x00" + name))
	return kind + "-" + hex.EncodeToString(h[:16]) + ".json"
}

func configName(k *polarispb.ConfigKey) string {
	return strings.Join([]string{k.GetProject(), k.GetGroup(), k.GetService(), k.GetVersion(), k.GetFile()}, "\x00")
}

// encodeEntry builds a cache file.
func encodeEntry(kind, name string, m proto.Message, now time.Time) ([]byte, error) {
	p, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(p)
	return json.Marshal(cacheEntry{V: 1, Kind: kind, Name: name, Saved: now.UTC(), Payload: p, Sum: hex.EncodeToString(sum[:])})
}

// decodeEntry parses a cache file of kind into m and returns its name.
func decodeEntry(b []byte, kind string, m proto.Message) (string, error) {
	var e cacheEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return "", fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if e.V != 1 || e.Kind != kind {
		return "", fmt.Errorf("%w: version %d kind %q", errCorrupt, e.V, e.Kind)
	}
	sum := sha256.Sum256(e.Payload)
	if hex.EncodeToString(sum[:]) != e.Sum {
		return "", fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	if err := proto.Unmarshal(e.Payload, m); err != nil {
		return "", fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return e.Name, nil
}

func (c *diskCache) save(kind, name string, m proto.Message) {
	if c == nil {
		return
	}
	if err := c.write(cacheName(kind, name), kind, name, m); err != nil {
		c.log.Warn().Err(err).Str("kind", kind).Msg("polaris cache write failed")
	}
}

func (c *diskCache) write(file, kind, name string, m proto.Message) error {
	b, err := encodeEntry(kind, name, m, time.Now())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(c.dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, filepath.Join(c.dir, file))
	}
	if werr != nil {
		_ = os.Remove(tmp)
	}
	return werr
}

func (c *diskCache) remove(kind, name string) {
	if c == nil {
		return
	}
	if err := os.Remove(filepath.Join(c.dir, cacheName(kind, name))); err != nil && !os.IsNotExist(err) {
		c.log.Warn().Err(err).Msg("polaris cache remove failed")
	}
}

// load reads the entry kind/name into m. A missing file is false; a corrupt one is
// logged and false.
func (c *diskCache) load(kind, name string, m proto.Message) bool {
	if c == nil {
		return false
	}
	path := filepath.Join(c.dir, cacheName(kind, name))
	b, err := os.ReadFile(path)
	if err != nil {
		if !os.IsNotExist(err) {
			c.log.Warn().Err(err).Str("file", path).Msg("polaris cache unreadable: ignored")
		}
		return false
	}
	got, err := decodeEntry(b, kind, m)
	if err == nil && got != name {
		err = fmt.Errorf("%w: holds %q", errCorrupt, got)
	}
	if err != nil {
		c.log.Warn().Err(err).Str("file", path).Msg("polaris cache file ignored")
		return false
	}
	return true
}

// configs returns every cached config file matching key (prefix: same directory, file
// name starting with key's).
func (c *diskCache) configs(key *polarispb.ConfigKey, prefix bool) []*polarispb.ConfigFile {
	if c == nil {
		return nil
	}
	matches, _ := filepath.Glob(filepath.Join(c.dir, kindConfig+"-*.json"))
	var out []*polarispb.ConfigFile
	for _, path := range matches {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		f := &polarispb.ConfigFile{}
		name, err := decodeEntry(b, kindConfig, f)
		if err != nil || name != configName(f.GetKey()) || filepath.Base(path) != cacheName(kindConfig, name) {
			c.log.Warn().Err(err).Str("file", path).Msg("polaris cache file ignored")
			continue
		}
		if keyMatches(key, f.GetKey(), prefix) {
			out = append(out, f)
		}
	}
	return out
}

func keyMatches(w, f *polarispb.ConfigKey, prefix bool) bool {
	same := w.GetProject() == f.GetProject() && w.GetGroup() == f.GetGroup() && w.GetService() == f.GetService() && w.GetVersion() == f.GetVersion()
	if !prefix {
		return same && w.GetFile() == f.GetFile()
	}
	return same && strings.HasPrefix(f.GetFile(), w.GetFile())
}
