// Package auth keeps the bearer tokens of polaris's admin API and console: each token
// has a role (admin may write, viewer may only read), is shown once when created and is
// stored only as its SHA-256 hash, in one JSON file written atomically (temp + rename).
//
//	st, _ := auth.Open(filepath.Join(dataDir, auth.FileName), time.Now)
//	if secret, ok, _ := st.Bootstrap(); ok { log.Warn().Str("token", secret).Msg("first admin token") }
//	tok, ok := st.Authenticate(secret)       // tok.Role == auth.RoleAdmin
//
// The package imports no transport.
package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

// FileName is the name of the token file inside polaris's data directory.
const FileName = "console-tokens.json"

// Role is what a token may do.
type Role string

// Roles.
const (
	// RoleAdmin reads and writes.
	RoleAdmin Role = "admin"
	// RoleViewer only reads.
	RoleViewer Role = "viewer"
)

// Valid tells whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleViewer }

// CanWrite tells whether r may change state.
func (r Role) CanWrite() bool { return r == RoleAdmin }

// Errors of the token store, with their codes.
var (
	// ErrInvalid is returned for a bad role or name, or for revoking the last admin token.
	ErrInvalid = aserr.New(aserr.ErrInvalidParam.Code, "invalid token request")
	// ErrNotFound is returned for an unknown token id.
	ErrNotFound = aserr.New(aserr.ErrNotFound.Code, "token not found")
	// ErrCorrupt is returned by Open for a token file that does not parse.
	ErrCorrupt = aserr.New(aserr.ErrInternal.Code, "token file corrupt")
)

// Token is what is stored about a token; the secret itself is never stored.
type Token struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
}

type fileFormat struct {
	Version int     `json:"version"`
	Tokens  []Token `json:"tokens"`
}

// Store is the token store. It is safe for concurrent use.
type Store struct {
	path string
	now  func() time.Time

	mu     sync.RWMutex
	tokens []Token
	byHash map[string]int
	seed   string // sha256 of the operator-provided admin token, "" when none
}

// SeededID is the id of the operator-provided admin token (see Seed).
const SeededID = "configured"

// Seed makes secret an admin token for as long as the process runs, without storing it:
// the token an operator provides through config or a secret (several polaris replicas
// share it, and none has to print one). A seeded store never bootstraps a token.
func (s *Store) Seed(secret string) error {
	if len(secret) < 16 || len(secret) > 256 {
		return fmt.Errorf("admin token must be 16..256 characters: %w", ErrInvalid)
	}
	s.mu.Lock()
	s.seed = hashOf(secret)
	s.mu.Unlock()
	return nil
}

// Open loads the token file at path (a missing file is an empty store). now nil is
// time.Now. A file that does not parse is an error: the store never silently starts
// over, which would hand out a new admin token.
func Open(path string, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	s := &Store{path: path, now: now}
	b, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		s.index(nil)
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("read token file: %w", err)
	}
	toks, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	s.index(toks)
	return s, nil
}

// Decode parses the token file format and checks every entry.
func Decode(b []byte) ([]Token, error) {
	var f fileFormat
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("version %d: %w", f.Version, ErrCorrupt)
	}
	seen := map[string]bool{}
	for _, t := range f.Tokens {
		h, err := hex.DecodeString(t.SHA256)
		if err != nil || len(h) != sha256.Size || t.ID == "" || !t.Role.Valid() || seen[t.ID] {
			return nil, fmt.Errorf("entry %q: %w", t.ID, ErrCorrupt)
		}
		seen[t.ID] = true
	}
	return f.Tokens, nil
}

func (s *Store) index(toks []Token) {
	s.tokens = toks
	s.byHash = make(map[string]int, len(toks))
	for i, t := range toks {
		s.byHash[t.SHA256] = i
	}
}

// Bootstrap creates the first admin token when the store holds none and returns its
// secret (created true); the caller shows it once. It does nothing on a store that
// already has tokens.
func (s *Store) Bootstrap() (secret string, created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) > 0 || s.seed != "" {
		return "", false, nil
	}
	secret, _, err = s.createLocked("bootstrap", RoleAdmin)
	return secret, err == nil, err
}

// Create makes a token of role named name and returns its secret, shown only now.
func (s *Store) Create(name string, role Role) (string, Token, error) {
	if !role.Valid() {
		return "", Token{}, fmt.Errorf("create token: role %q: %w", role, ErrInvalid)
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 {
		return "", Token{}, fmt.Errorf("create token: name must be 1..64 characters: %w", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createLocked(name, role)
}

func (s *Store) createLocked(name string, role Role) (string, Token, error) {
	var raw [32]byte
	var id [6]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	if _, err := rand.Read(id[:]); err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	t := Token{ID: hex.EncodeToString(id[:]), Name: name, Role: role, Created: s.now().UTC()}
	secret := "plr_" + t.ID + "_" + base64.RawURLEncoding.EncodeToString(raw[:])
	t.SHA256 = hashOf(secret)
	next := append(append([]Token(nil), s.tokens...), t)
	if err := s.saveLocked(next); err != nil {
		return "", Token{}, err
	}
	s.index(next)
	return secret, t, nil
}

// Revoke deletes the token id. The last admin token cannot be revoked, so the store
// never locks every operator out.
func (s *Store) Revoke(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, admins := -1, 0
	for i, t := range s.tokens {
		if t.ID == id {
			idx = i
		}
		if t.Role == RoleAdmin {
			admins++
		}
	}
	if idx < 0 {
		return fmt.Errorf("revoke %q: %w", id, ErrNotFound)
	}
	if s.tokens[idx].Role == RoleAdmin && admins == 1 {
		return fmt.Errorf("revoke %q: it is the last admin token: %w", id, ErrInvalid)
	}
	next := append(append([]Token(nil), s.tokens[:idx]...), s.tokens[idx+1:]...)
	if err := s.saveLocked(next); err != nil {
		return err
	}
	s.index(next)
	return nil
}

// Authenticate returns the token whose secret is secret.
func (s *Store) Authenticate(secret string) (Token, bool) {
	if secret == "" || len(secret) > 256 {
		return Token{}, false
	}
	h := hashOf(secret)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.seed != "" && subtle.ConstantTimeCompare([]byte(s.seed), []byte(h)) == 1 {
		return Token{ID: SeededID, Name: "admin-token (config)", Role: RoleAdmin, SHA256: h}, true
	}
	i, ok := s.byHash[h]
	if !ok || subtle.ConstantTimeCompare([]byte(s.tokens[i].SHA256), []byte(h)) != 1 {
		return Token{}, false
	}
	return s.tokens[i], true
}

// Get returns the token id, if it still exists.
func (s *Store) Get(id string) (Token, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if id == SeededID && s.seed != "" {
		return Token{ID: SeededID, Name: "admin-token (config)", Role: RoleAdmin, SHA256: s.seed}, true
	}
	for _, t := range s.tokens {
		if t.ID == id {
			return t, true
		}
	}
	return Token{}, false
}

// List returns every token (hashes included), oldest first.
func (s *Store) List() []Token {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := append([]Token(nil), s.tokens...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// saveLocked writes toks to a temp file in the same directory, syncs it and renames it
// over the token file, so a crash leaves either the old or the new file.
func (s *Store) saveLocked(toks []Token) error {
	b, err := json.MarshalIndent(fileFormat{Version: 1, Tokens: toks}, "", "  ")
	if err != nil {
		return fmt.Errorf("save tokens: %w", err)
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save tokens: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tokens-*.tmp")
	if err != nil {
		return fmt.Errorf("save tokens: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(append(b, '\n'))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, s.path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("save tokens: %w", werr)
	}
	return nil
}

func hashOf(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}
