package custody

import (
	"bytes"
	"context"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cloister-dev/cloister/workload"
)

// Errors of Service.Sign.
var (
	ErrUnknownKey   = errors.New("no such key")
	ErrUnauthorized = errors.New("party may not sign with this key")
	ErrPrefix       = errors.New("message does not start with an allowed prefix")
	ErrTooLarge     = errors.New("message too large")
)

// MaxMessageSize bounds a message to sign.
const MaxMessageSize = 1 << 20

// SecretSource releases the sealing key after attestation. *kbs.Client
// implements it.
type SecretSource interface {
	Resource(ctx context.Context, path string) ([]byte, error)
}

// PublicKey is the exportable half of a signing key.
type PublicKey struct {
	Name string  `json:"name"`
	Type KeyType `json:"type"`
	// Format is FormatPKIX (DER SubjectPublicKeyInfo) for Ed25519 and
	// ECDSA P-256, FormatSEC1Compressed (33 bytes) for secp256k1, which
	// has no PKIX encoding in Go's crypto/x509.
	Format    string `json:"format"`
	PublicKey []byte `json:"public_key"`
}

// Service holds the unsealed signing keys of a manifest and applies its
// authorization policy. It is safe for concurrent use.
type Service struct {
	m    *Manifest
	keys map[string]*signingKey
	log  *slog.Logger
}

// sealedFileSuffix ends the name of each key's sealed file, NAME.sealed.json.
const sealedFileSuffix = ".sealed.json"

// Options control Open.
type Options struct {
	// CreateMissing generates and seals a key for every key of the
	// manifest that has no sealed file, also when dir holds sealed files
	// of other keys, as after a key was added to the manifest. Without
	// it, Open generates keys only when dir holds no sealed key file at
	// all, on the first start.
	CreateMissing bool
}

// Open fetches the sealing key from broker, unseals every key of m from
// dir, and generates and seals keys that have no file yet on the first
// start (dir holds no sealed key file) or with opts.CreateMissing. The
// sealing key's bytes are cleared before Open returns. The AES key
// schedule derived from them, which contains the key, stays in the heap
// until the garbage collector reuses that memory.
//
// A sealed file that fails to open, or that is missing beside others,
// stops Open, because the host may have removed it, and a new key in its
// place would silently replace a key that parties trust. A key whose
// public key the manifest pins (KeyPolicy.PublicKey) is never generated:
// a missing file stops Open even on the first start and with
// opts.CreateMissing, and so does a file that contains another key. Open
// checks every file before it generates a key, so a failed Open writes no
// file.
//
// NOTE: a key that the manifest does not pin is still replaced when the
// host removes every sealed file, because the next start is a first
// start and generates a new key. Parties detect that only by comparing
// the public keys, unless they pin them in the manifest.
func Open(ctx context.Context, m *Manifest, dir string, broker SecretSource, log *slog.Logger, opts Options) (*Service, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("custody: creating the key directory: %w", err)
	}

	sealingKey, err := broker.Resource(ctx, m.SealingKey)
	if err != nil {
		return nil, fmt.Errorf("custody: fetching the sealing key %s from the key broker: %w", m.SealingKey, err)
	}
	aead, err := newSealer(sealingKey)
	clear(sealingKey)
	if err != nil {
		return nil, fmt.Errorf("custody: sealing key %s: %w", m.SealingKey, err)
	}

	firstStart, err := noSealedKeys(dir)
	if err != nil {
		return nil, err
	}

	s := &Service{m: m, keys: map[string]*signingKey{}, log: log}
	var missing []KeyPolicy
	for _, kp := range m.Keys {
		path := sealedPath(dir, kp.Name)
		key, err := openKey(aead, path, kp)
		if errors.Is(err, errNoSealedFile) {
			missing = append(missing, kp)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("custody: key %q (%s): %w", kp.Name, path, err)
		}
		s.keys[kp.Name] = key
		log.Info("custody: unsealed key", "key", kp.Name, "type", kp.Type, "public_key_pinned", kp.PublicKey != "")
	}

	for _, kp := range missing {
		if err := checkMayGenerate(kp, firstStart || opts.CreateMissing); err != nil {
			return nil, fmt.Errorf("custody: key %q (%s): %w", kp.Name, sealedPath(dir, kp.Name), err)
		}
	}
	for _, kp := range missing {
		path := sealedPath(dir, kp.Name)
		key, err := createKey(aead, path, kp)
		if err != nil {
			return nil, fmt.Errorf("custody: key %q (%s): %w", kp.Name, path, err)
		}
		s.keys[kp.Name] = key
		if firstStart {
			log.Info("custody: generated and sealed a new key", "key", kp.Name, "type", kp.Type, "file", path)
		} else {
			log.Warn("custody: generated and sealed a new key beside existing ones; parties must trust its public key", "key", kp.Name, "type", kp.Type, "file", path)
		}
	}
	return s, nil
}

// sealedPath returns the path of the sealed file of the key name in dir.
func sealedPath(dir, name string) string {
	return filepath.Join(dir, name+sealedFileSuffix)
}

// errNoSealedFile is the error of openKey when the key has no sealed file.
var errNoSealedFile = errors.New("the sealed file is missing")

// restoreFix ends the errors about a sealed file that cannot be opened.
const restoreFix = "restore the file from a backup of the key directory"

// openKey unseals the key at path and checks it against the public key
// that the manifest pins, if any. It returns errNoSealedFile when the
// file does not exist.
func openKey(aead cipher.AEAD, path string, kp KeyPolicy) (*signingKey, error) {
	raw, err := workload.ReadFileMax(path, "sealed key file", maxSealedFile, restoreFix)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoSealedFile
	}
	if err != nil {
		return nil, err
	}
	sealed, err := ParseSealedKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, restoreFix)
	}
	key, err := unseal(aead, sealed, kp.Name, kp.Type)
	if errors.Is(err, errDecryption) {
		return nil, fmt.Errorf("%w: %s, or store the sealing key that sealed it at the key broker", err, restoreFix)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, restoreFix)
	}
	pinned, err := kp.pinnedPublicKey()
	if err != nil {
		return nil, err
	}
	if pinned != nil && !bytes.Equal(key.public, pinned) {
		return nil, fmt.Errorf("the sealed file contains public key %s, but the manifest pins public_key %s. "+
			"The host may have replaced the file with another key sealed under the same sealing key: "+
			"restore the file from a backup of the key directory",
			base64.StdEncoding.EncodeToString(key.public), kp.PublicKey)
	}
	return key, nil
}

// checkMayGenerate returns why a new key must not replace the missing
// sealed file of kp, or nil when create is true and the manifest does not
// pin the key.
func checkMayGenerate(kp KeyPolicy, create bool) error {
	if kp.PublicKey != "" {
		return fmt.Errorf("%w, and the manifest pins the key's public key, so no new key is generated. "+
			"The host may have removed the file: restore it from a backup of the key directory. "+
			"To replace the key on purpose, remove its public_key from the manifest, which makes a new manifest digest that the parties and the release policy must accept", errNoSealedFile)
	}
	if !create {
		return fmt.Errorf("%w, while other keys of the directory have sealed files; "+
			"restore it from a backup, or start with --create-missing-keys (Options.CreateMissing) to generate a new key, whose public key the parties must then trust again", errNoSealedFile)
	}
	return nil
}

// createKey generates a key of kp's type, seals it and writes it to path.
func createKey(aead cipher.AEAD, path string, kp KeyPolicy) (*signingKey, error) {
	key, secret, err := generateKey(kp.Type)
	if err != nil {
		return nil, err
	}
	sealed, err := seal(aead, kp.Name, key, secret)
	clear(secret)
	if err != nil {
		return nil, err
	}
	if err := writeSealed(path, sealed); err != nil {
		return nil, err
	}
	return key, nil
}

// writeSealed writes the sealed key to a temporary file and renames it
// into place, so that a crash leaves either no file or a whole one.
func writeSealed(path string, sealed *SealedKey) error {
	body, err := json.MarshalIndent(sealed, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sealing-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(body, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// PublicKeys returns the public keys in manifest order.
func (s *Service) PublicKeys() []PublicKey {
	out := make([]PublicKey, 0, len(s.m.Keys))
	for _, kp := range s.m.Keys {
		out = append(out, s.publicKey(kp.Name))
	}
	return out
}

// PublicKey returns the public key of the key name.
func (s *Service) PublicKey(name string) (PublicKey, error) {
	if _, ok := s.keys[name]; !ok {
		return PublicKey{}, fmt.Errorf("%w: %q", ErrUnknownKey, name)
	}
	return s.publicKey(name), nil
}

func (s *Service) publicKey(name string) PublicKey {
	k := s.keys[name]
	return PublicKey{Name: name, Type: k.typ, Format: k.format, PublicKey: bytes.Clone(k.public)}
}

// Sign signs message with the key name on behalf of party, when the
// key's policy lists party as a signer and the message starts with one
// of the key's prefixes.
func (s *Service) Sign(party, name string, message []byte) ([]byte, error) {
	kp, ok := s.m.policy(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, name)
	}
	if !slices.Contains(kp.Signers, party) {
		return nil, fmt.Errorf("%w: party %q is not among the signers of key %q", ErrUnauthorized, party, name)
	}
	if len(message) > MaxMessageSize {
		return nil, fmt.Errorf("%w: the message of %d bytes is larger than %d bytes; sign a digest of it instead", ErrTooLarge, len(message), MaxMessageSize)
	}
	if len(kp.MessagePrefixes) > 0 && !slices.ContainsFunc(kp.MessagePrefixes, func(p string) bool {
		return bytes.HasPrefix(message, []byte(p))
	}) {
		return nil, fmt.Errorf("%w: key %q signs only messages starting with %q", ErrPrefix, name, kp.MessagePrefixes)
	}
	return s.keys[name].sign(message)
}

// noSealedKeys reports whether dir has no sealed key file. It reads the
// directory rather than globbing, so that pattern characters in dir's name
// cannot hide the files and let missing keys be generated again.
func noSealedKeys(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("custody: listing the sealed key files in %s: %w", dir, err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), sealedFileSuffix) {
			return false, nil
		}
	}
	return true, nil
}
