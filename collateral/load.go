package collateral

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// maxFileSize bounds a collateral file. Real items are a few kilobytes; a
// CRL of a large CA can reach a few megabytes.
const maxFileSize = 16 << 20

// LoadPath loads a file, or every regular file directly inside a directory
// (not its subdirectories), identifying each by its content. Files that hold
// no collateral are listed in Set.Ignored rather than failing the load,
// because bundle directories often carry notes and originals.
func LoadPath(path string) (*Set, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("collateral: %w", err)
	}
	if !info.IsDir() {
		s := &Set{}
		if err := s.loadFile(path); err != nil {
			return nil, err
		}
		return s, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("collateral: reading directory %s: %w", path, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	s := &Set{}
	for _, e := range entries {
		p := filepath.Join(path, e.Name())
		fi, err := os.Stat(p) // follows symbolic links
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if err := s.loadFile(p); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// loadFile adds the collateral in the regular file at path. It reads the
// opened file's own metadata and at most maxFileSize+1 bytes, so that a
// FIFO, a device such as /dev/zero or a file that grows after the check can
// neither block the load nor fill memory.
func (s *Set) loadFile(path string) error {
	// Opening a FIFO blocks until a writer opens it, so the type is checked
	// before the open and again on the opened file.
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("collateral: %w", err)
	}
	if err := checkRegular(path, fi); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("collateral: %w", err)
	}
	defer f.Close()
	fi, err = f.Stat()
	if err != nil {
		return fmt.Errorf("collateral: %w", err)
	}
	if err := checkRegular(path, fi); err != nil {
		return err
	}
	if fi.Size() > maxFileSize {
		s.Ignored = append(s.Ignored, fmt.Sprintf("%s: %d bytes is over the %d-byte limit", path, fi.Size(), maxFileSize))
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return fmt.Errorf("collateral: %w", err)
	}
	if len(data) > maxFileSize {
		s.Ignored = append(s.Ignored, fmt.Sprintf("%s: grew over the %d-byte limit while it was read", path, maxFileSize))
		return nil
	}
	n, reason := s.AddBytes(path, data)
	if n == 0 {
		s.Ignored = append(s.Ignored, path+": "+reason)
	}
	return nil
}

func checkRegular(path string, fi os.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("collateral: %s is a %s, not a regular file; pass a collateral file or a directory of them",
		path, fileType(fi.Mode()))
}

// fileType names the type of a file that is not regular, for an error.
func fileType(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "device"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}

// AddBytes identifies data by its content and adds every item it holds:
// PEM blocks (certificates, CRLs, public keys, OCSP responses), a DER
// certificate, CRL, SubjectPublicKeyInfo or OCSP response, a JSON document,
// or an XML document. It returns the number of items added and, when that
// is zero, the reason.
func (s *Set) AddBytes(source string, data []byte) (int, string) {
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.Contains(trimmed, []byte("-----BEGIN ")):
		return s.addPEM(source, trimmed)
	case len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '['):
		return s.addJSON(source, trimmed)
	case isXML(trimmed):
		// The TEE package that reads the document parses it, with its own
		// limits, so only the first byte is looked at here.
		s.Add(&Item{Kind: KindXML, Source: source, Raw: data})
		return 1, ""
	default:
		return s.addDER(source, data)
	}
}

// isXML reports whether data starts as an XML document does: with '<',
// after an optional UTF-8 byte order mark. DER never starts with '<' (0x3c
// is not a SEQUENCE tag).
func isXML(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	return len(data) > 0 && data[0] == '<'
}

func (s *Set) addPEM(source string, data []byte) (int, string) {
	added := 0
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "CERTIFICATE":
			if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
				s.Add(&Item{Kind: KindCertificate, Source: source, Raw: block.Bytes, Certificate: cert})
				added++
			}
		case "X509 CRL":
			if crl, err := x509.ParseRevocationList(block.Bytes); err == nil {
				s.Add(&Item{Kind: KindCRL, Source: source, Raw: block.Bytes, CRL: crl})
				added++
			}
		case "PUBLIC KEY":
			if key, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
				s.Add(&Item{Kind: KindPublicKey, Source: source, Raw: block.Bytes, PublicKey: key})
				added++
			}
		case "OCSP RESPONSE":
			if _, err := ParseOCSPResponse(block.Bytes); err == nil {
				s.Add(&Item{Kind: KindOCSP, Source: source, Raw: block.Bytes})
				added++
			}
		}
	}
	if added == 0 {
		return 0, "no certificate, CRL, public key or OCSP response in its PEM blocks"
	}
	return added, ""
}

func (s *Set) addDER(source string, data []byte) (int, string) {
	if cert, err := x509.ParseCertificate(data); err == nil {
		s.Add(&Item{Kind: KindCertificate, Source: source, Raw: data, Certificate: cert})
		return 1, ""
	}
	if crl, err := x509.ParseRevocationList(data); err == nil {
		s.Add(&Item{Kind: KindCRL, Source: source, Raw: data, CRL: crl})
		return 1, ""
	}
	if key, err := x509.ParsePKIXPublicKey(data); err == nil {
		s.Add(&Item{Kind: KindPublicKey, Source: source, Raw: data, PublicKey: key})
		return 1, ""
	}
	_, err := ParseOCSPResponse(data)
	var status OCSPStatusError
	switch {
	case err == nil:
		s.Add(&Item{Kind: KindOCSP, Source: source, Raw: data})
		return 1, ""
	case errors.As(err, &status):
		return 0, status.Error()
	}
	return 0, "not a DER certificate, CRL, public key or OCSP response"
}

func (s *Set) addJSON(source string, data []byte) (int, string) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		if json.Valid(data) {
			s.Add(&Item{Kind: KindJSON, Source: source, Raw: data})
			return 1, ""
		}
		return 0, "invalid JSON: " + err.Error()
	}
	kind := KindJSON
	switch {
	case top["tcbInfo"] != nil:
		kind = KindTCBInfo
	case top["enclaveIdentity"] != nil || top["qeIdentity"] != nil:
		kind = KindQEIdentity
	case top["keys"] != nil || top["kty"] != nil:
		kind = KindJWKS
	}
	s.Add(&Item{Kind: kind, Source: source, Raw: data})
	return 1, ""
}
