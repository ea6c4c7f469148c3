package authn

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Tokens is a set of static bearer tokens, read from a file in upstream's
// --token-auth-file format: one `token,user,uid[,"group1,group2"]` per line.
// Tokens are held only as SHA-256 digests, so a lookup's timing says
// nothing useful about how close a guess was.
type Tokens struct {
	byDigest map[[sha256.Size]byte]User
}

// ReadTokenFile parses path. An empty file is valid and accepts no token.
func ReadTokenFile(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.Comment = '#'
	t := &Tokens{byDigest: map[[sha256.Size]byte]User{}}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("authn: %s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) < 3 {
			return nil, fmt.Errorf("authn: %s:%d: want token,user,uid[,groups], got %d fields", path, line, len(rec))
		}
		if rec[0] == "" || rec[1] == "" {
			return nil, fmt.Errorf("authn: %s:%d: empty token or user", path, line)
		}
		u := User{Name: rec[1], UID: rec[2]}
		if len(rec) > 3 && rec[3] != "" {
			for _, g := range strings.Split(rec[3], ",") {
				if g = strings.TrimSpace(g); g != "" {
					u.Groups = append(u.Groups, g)
				}
			}
		}
		d := sha256.Sum256([]byte(rec[0]))
		if _, dup := t.byDigest[d]; dup {
			return nil, fmt.Errorf("authn: %s:%d: duplicate token", path, line)
		}
		t.byDigest[d] = u
	}
	return t, nil
}

// NewTokens returns a token set from a map of token to user, for tokens
// that never touch the disk, such as the ones in-process components use to
// call the API server over loopback.
func NewTokens(tokens map[string]User) (*Tokens, error) {
	t := &Tokens{byDigest: make(map[[sha256.Size]byte]User, len(tokens))}
	for token, u := range tokens {
		if token == "" || u.Name == "" {
			return nil, errors.New("authn: empty token or user")
		}
		t.byDigest[sha256.Sum256([]byte(token))] = u
	}
	return t, nil
}

// lookup returns the user a token belongs to.
func (t *Tokens) lookup(token string) (User, bool) {
	if t == nil {
		return User{}, false
	}
	u, ok := t.byDigest[sha256.Sum256([]byte(token))]
	return u, ok
}

// EnsureTokenFile makes sure path exists, creating it (mode 0600) with one
// fresh random token for u when it does not, and returns the token file's
// contents parsed. An existing file is left alone, so the token a user
// copied keeps working across restarts and a hand-edited file is respected.
func EnsureTokenFile(path string, u User) (*Tokens, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := writeTokenFile(path, u); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	return ReadTokenFile(path)
}

func writeTokenFile(path string, u User) error {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("authn: %w", err)
	}
	var b strings.Builder
	w := csv.NewWriter(&b)
	rec := []string{hex.EncodeToString(secret), u.Name, u.UID}
	if len(u.Groups) > 0 {
		rec = append(rec, strings.Join(u.Groups, ","))
	}
	if err := w.Write(rec); err != nil {
		return fmt.Errorf("authn: %w", err)
	}
	w.Flush()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("authn: %w", err)
	}
	// O_EXCL: two servers started at once on one data dir must not each
	// write a different token and have one of them silently lost.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("authn: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("authn: %w", err)
	}
	return f.Close()
}
