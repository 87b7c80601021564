package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Bcrypt costs --bcrypt-cost accepts (etcd's range).
const (
	// MinBcryptCost is the smallest --bcrypt-cost.
	MinBcryptCost = bcrypt.MinCost
	// MaxBcryptCost is the largest --bcrypt-cost.
	MaxBcryptCost = bcrypt.MaxCost
	// DefaultBcryptCost is etcd's default --bcrypt-cost.
	DefaultBcryptCost = bcrypt.DefaultCost
)

// HashPassword returns the base64 bcrypt hash of password at cost, as the
// proposing member puts it in AuthUserAdd and AuthUserChangePassword
// (etcd's HashedPassword): the raft log never holds a password.
func HashPassword(password string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return base64.StdEncoding.EncodeToString(h), nil
}

// CheckPassword checks name's password (etcd's CheckPassword). Errors:
// ErrAuthNotEnabled, ErrAuthFailed, ErrNoPasswordUser.
//
// bcrypt is slow on purpose; a reconnect storm of N clients would cost N
// bcrypt runs. A successful check is therefore remembered, keyed by an HMAC
// (with a per-process random key) of the user, the presented password and
// the user's stored hash: the same password against the same stored hash
// is answered by a map lookup. A password change or a re-created user has a
// new stored hash, so an old entry can never match again. Failures are never
// cached, so guessing still costs a bcrypt run per guess. The cache is
// bounded (defaultPasswordCacheSize entries; a full cache drops an
// arbitrary entry) and lives only in memory.
func (s *Store) CheckPassword(name, password string) error {
	s.mu.RLock()
	enabled := s.enabled
	u, ok := s.users[name]
	s.mu.RUnlock()
	if !enabled {
		return ErrAuthNotEnabled
	}
	if !ok {
		return ErrAuthFailed
	}
	if u.Options != nil && u.Options.NoPassword {
		return ErrNoPasswordUser
	}
	ck := s.pw.key(name, password, u.Password)
	if s.pw.has(ck) {
		return nil
	}
	if bcrypt.CompareHashAndPassword(u.Password, []byte(password)) != nil {
		return ErrAuthFailed
	}
	s.pw.add(ck)
	return nil
}

// defaultPasswordCacheSize bounds the remembered successful checks.
const defaultPasswordCacheSize = 4096

// passwordCache remembers successful password checks. Safe for concurrent use.
type passwordCache struct {
	secret []byte
	max    int
	mu     sync.Mutex
	ok     map[[sha256.Size]byte]struct{}
}

func newPasswordCache(max int) *passwordCache {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails (Go 1.24+)
	return &passwordCache{secret: secret, max: max, ok: map[[sha256.Size]byte]struct{}{}}
}

// key is the cache key of (user, password, stored hash).
func (c *passwordCache) key(user, password string, stored []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.secret)
	for _, part := range [][]byte{[]byte(user), []byte(password), stored} {
		var n [8]byte
		for i, l := 0, len(part); i < 8; i, l = i+1, l>>8 {
			n[i] = byte(l)
		}
		m.Write(n[:])
		m.Write(part)
	}
	var k [sha256.Size]byte
	copy(k[:], m.Sum(nil))
	return k
}

func (c *passwordCache) has(k [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.ok[k]
	return ok
}

func (c *passwordCache) add(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ok) >= c.max {
		for old := range c.ok {
			delete(c.ok, old)
			break
		}
	}
	c.ok[k] = struct{}{}
}

// PasswordCacheLen is the number of remembered successful checks (for tests
// and metrics).
func (s *Store) PasswordCacheLen() int {
	s.pw.mu.Lock()
	defer s.pw.mu.Unlock()
	return len(s.pw.ok)
}

// NewKey returns a fresh random token signing key for EnableRequest.
func NewKey() []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	return k
}
