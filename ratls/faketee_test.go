package ratls

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"github.com/cloister-dev/cloister/attest"
)

// The fake TEE of these tests signs a small report with a key generated
// per test run. Its layout mimics the fixed part of an SGX quote (436
// bytes, then a little-endian signature length at 432), so that the same
// evidence also fits the Gramine legacy and Open Enclave layouts:
//
//	0..4 "FAKE", 4 flags (bit 0: debug), 5..37 measurement,
//	37..101 report data, 432..436 signature length, then an ASN.1 ECDSA
//	P-256 signature over bytes 0..432.
const (
	fakeFormat   = "fake-tee"
	fakeFixed    = 436
	fakeTEE      = attest.TEE("fake")
	fakeFlagDbg  = 1
	fakeMeasOff  = 5
	fakeRDOff    = 37
	fakeSigLenAt = 432
)

var fakeKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

func init() {
	attest.Register(fakeVerifier{})
	formatTags[fakeFormat] = TagSNPReport
	// The fake report also stands in for an SGX quote in the Gramine and
	// Open Enclave layouts.
	quoteFormats[fakeFormat] = true
}

type fakeAttester struct {
	debug       bool
	measurement [32]byte
	// override, when set, replaces the report data the caller asked for.
	override []byte
	calls    int
}

func (a *fakeAttester) Name() string { return "emulated-fake" }

func (a *fakeAttester) Attest(_ context.Context, reportData []byte) (*attest.Evidence, error) {
	a.calls++
	if len(reportData) > 64 {
		return nil, errors.New("report data longer than 64 bytes")
	}
	if a.override != nil {
		reportData = a.override
	}
	return &attest.Evidence{Format: fakeFormat, Data: fakeReport(a.debug, a.measurement, reportData)}, nil
}

func fakeReport(debug bool, measurement [32]byte, reportData []byte) []byte {
	body := make([]byte, fakeFixed)
	copy(body, "FAKE")
	if debug {
		body[4] = fakeFlagDbg
	}
	copy(body[fakeMeasOff:], measurement[:])
	copy(body[fakeRDOff:fakeRDOff+64], reportData)
	digest := sha256.Sum256(body[:fakeSigLenAt])
	sig, err := ecdsa.SignASN1(rand.Reader, fakeKey, digest[:])
	if err != nil {
		panic(err)
	}
	binary.LittleEndian.PutUint32(body[fakeSigLenAt:], uint32(len(sig)))
	return append(body, sig...)
}

type fakeVerifier struct{}

func (fakeVerifier) Name() string { return fakeFormat }

func (fakeVerifier) Detect(data []byte) bool { return bytes.HasPrefix(data, []byte("FAKE")) }

func (fakeVerifier) Verify(_ context.Context, ev attest.Evidence, _ attest.Options) (*attest.Claims, error) {
	data := ev.Data
	if len(data) < fakeFixed {
		return nil, attest.Errorf(attest.ErrMalformed, "fake report", "%d bytes", len(data))
	}
	sigLen := binary.LittleEndian.Uint32(data[fakeSigLenAt:fakeFixed])
	if uint64(sigLen) != uint64(len(data)-fakeFixed) {
		return nil, attest.Errorf(attest.ErrMalformed, "fake report", "signature length %d", sigLen)
	}
	digest := sha256.Sum256(data[:fakeSigLenAt])
	if !ecdsa.VerifyASN1(&fakeKey.PublicKey, digest[:], data[fakeFixed:]) {
		return nil, attest.Errorf(attest.ErrSignature, "fake report", "signature does not verify")
	}
	c := &attest.Claims{TEE: fakeTEE, Emulated: true, TrustAnchor: attest.TrustAnchorRef{Kind: attest.AnchorEmulatedRoot, Name: "fake"}}
	c.Measurement = bytes.Clone(data[fakeMeasOff : fakeMeasOff+32])
	c.ReportData = bytes.Clone(data[fakeRDOff : fakeRDOff+64])
	c.Debug = data[4]&fakeFlagDbg != 0
	c.Pass("fake-signature")
	return c, nil
}
