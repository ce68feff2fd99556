// Package auth is sign-in for the bot's web pages: the forge's OAuth flow (golang.org/x/oauth2, PKCE, a state
// bound to a short-lived sealed cookie), sessions in sealed cookies, and the read-access rule a repository's pages
// are shown under (the forge's answer to the bot's own credentials, cached for a few minutes).
//
// The user's forge token is used once, to ask the forge who signed in, and then dropped: a session holds the
// identity alone (forge, numeric id, login), and every access check asks the forge with the bot's credentials.
package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// MinKeyBytes is the shortest key a Sealer takes; a key is hashed to AES-256's length only when it is longer.
const MinKeyBytes = 32

// ErrInvalid is a cookie that is not one the bot sealed (forged, tampered with, sealed with a retired key, or
// sealed for another purpose).
var ErrInvalid = errors.New("not a cookie the bot sealed")

// Sealer encrypts and authenticates what the bot keeps in cookies (AES-256-GCM): the browser can neither read
// nor change it. The first key seals; every key opens, so that a new key can be put first while sessions sealed
// with the old one still open until it is removed (rotation).
type Sealer struct {
	aeads []cipher.AEAD
}

// NewSealer makes a sealer of keys (each at least MinKeyBytes; the first seals).
func NewSealer(keys ...[]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("auth: a sealer needs a key")
	}
	s := &Sealer{}
	for i, k := range keys {
		if len(k) < MinKeyBytes {
			return nil, fmt.Errorf("auth: key %d has %d bytes, fewer than %d", i+1, len(k), MinKeyBytes)
		}
		block, err := aes.NewCipher(k[:32])
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// Seal encodes v as JSON and seals it for purpose (the cookie's name): a value sealed for one purpose does not
// open as another.
func (s *Sealer) Seal(purpose string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(purpose))), nil
}

// Open opens what Seal sealed for purpose into v; ErrInvalid for anything else.
func (s *Sealer) Open(purpose, sealed string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return ErrInvalid
	}
	for _, aead := range s.aeads {
		n := aead.NonceSize()
		if len(raw) < n+aead.Overhead() {
			return ErrInvalid
		}
		plain, err := aead.Open(nil, raw[:n], raw[n:], []byte(purpose))
		if err != nil {
			continue
		}
		if json.Unmarshal(plain, v) != nil {
			return ErrInvalid
		}
		return nil
	}
	return ErrInvalid
}
