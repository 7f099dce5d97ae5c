package dcap

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/testcert"
)

// resignQuote returns quote with edit applied to its header and body, signed
// again by the emulator's attestation key, so that the edited field is the
// only thing wrong with it.
func resignQuote(t *testing.T, e *Emulator, quote []byte, edit func(signed []byte)) []byte {
	t.Helper()
	q, err := ParseQuote(quote)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte{}, quote...)
	signed := out[:len(q.SignedData)]
	edit(signed)
	sig, err := signRaw(e.attestationKey, signed)
	if err != nil {
		t.Fatal(err)
	}
	copy(out[len(signed)+4:], sig)
	return out
}

// verifyQuote verifies quote against the fixture's collateral.
func (f *fixture) verifyQuote(quote []byte) (*attest.Claims, error) {
	return NewVerifier().Verify(context.Background(), attest.Evidence{Format: "dcap", Data: quote},
		attest.Options{At: f.now, Collateral: f.set(), TrustAnchors: f.anchors})
}

func (f *fixture) quote(t *testing.T) []byte {
	t.Helper()
	ev, err := f.e.Attest(context.Background(), []byte("nonce"))
	if err != nil {
		t.Fatal(err)
	}
	return ev.Data
}

// TestQEVendorIDChecked signs quotes whose header names a QE vendor other
// than Intel. Intel's QVL rejects them as an unsupported quote format.
func TestQEVendorIDChecked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vendor []byte
	}{
		{"zero", make([]byte, 16)},
		{"one byte changed", append([]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06}, 0x08)},
	} {
		for _, tee := range []string{"sgx", "tdx"} {
			t.Run(tc.name+" "+tee, func(t *testing.T) {
				f := newFixture(t, tee)
				quote := resignQuote(t, f.e, f.quote(t), func(signed []byte) { copy(signed[12:28], tc.vendor) })
				_, err := f.verifyQuote(quote)
				if !errors.Is(err, attest.ErrUnsupported) {
					t.Fatalf("error %v, expected an ErrUnsupported error", err)
				}
				if !strings.Contains(err.Error(), "QE vendor ID") {
					t.Errorf("error %q does not name the QE vendor ID", err)
				}
			})
		}
	}
}

// TestForeignTDXModuleBelowEveryLevel signs TCB Info whose TDX module
// signer differs from the quote's MRSIGNERSEAM and whose levels the
// platform does not meet. QVL checks the module before it matches a TCB
// level, so the quote must fail on MRSIGNERSEAM instead of receiving a
// NoMatchingTcbLevel status that a policy could accept.
func TestForeignTDXModuleBelowEveryLevel(t *testing.T) {
	foreign := strings.Repeat("ab", 48)
	for _, version := range []int{4, 5} {
		t.Run(fmt.Sprintf("quote v%d", version), func(t *testing.T) {
			e, _, anchors := emulated(t, EmulatorOptions{TEE: "tdx", QuoteVersion: version})
			now := time.Now()
			files, err := e.CollateralFiles(now)
			if err != nil {
				t.Fatal(err)
			}
			f := &fixture{e: e, files: files, anchors: anchors, now: now}
			f.resignTCBInfo(t, func(info *TCBInfo) {
				info.TDXModule.MRSigner = foreign
				info.TDXModuleIdentities[0].MRSigner = foreign
				for i := range info.TCBLevels {
					info.TCBLevels[i].TCB.PCESVN = emulatedPCESVN + 1
				}
			})
			claims, err := f.verify(t)
			if !errors.Is(err, attest.ErrChain) {
				t.Fatalf("error %v, expected an ErrChain error", err)
			}
			if !strings.Contains(err.Error(), "MRSIGNERSEAM") {
				t.Errorf("error %q does not name MRSIGNERSEAM", err)
			}
			if claims != nil && claims.TCB.Status == attest.TCBNoMatchingLevel {
				t.Errorf("status %s beside a foreign TDX module", claims.TCB.Status)
			}
		})
	}
}

// TestSEAMAttributesMustBeZero sets a SEAMATTRIBUTES bit that the TCB
// Info's attributes mask leaves out. QVL requires SEAMATTRIBUTES to be zero
// and equal to the TCB Info's attributes whatever the mask.
func TestSEAMAttributesMustBeZero(t *testing.T) {
	for _, major := range []byte{0, 1} {
		t.Run(fmt.Sprintf("module major version %d", major), func(t *testing.T) {
			info, ext, td := tdxPlatform(t)
			td.TEETCBSVN[1] = major
			info.TDXModule.AttributesMask = "FEFFFFFFFFFFFFFF"
			info.TDXModuleIdentities[0].AttributesMask = "FEFFFFFFFFFFFFFF"
			td.SEAMAttributes[0] = 0x01
			_, err := EvaluatePlatform(info, ext, td)
			if !errors.Is(err, attest.ErrChain) {
				t.Fatalf("error %v, expected an ErrChain error", err)
			}
			if !strings.Contains(err.Error(), "SEAMATTRIBUTES") {
				t.Errorf("error %q does not name SEAMATTRIBUTES", err)
			}
		})
	}
}

// TestQEStatusConvergence signs QE Identities whose matching level has a
// status other than UpToDate, OutOfDate and Revoked. QVL's
// EnclaveReportVerifier treats every such status as OutOfDate, which turns
// an UpToDate platform OutOfDate.
func TestQEStatusConvergence(t *testing.T) {
	for _, status := range []string{attest.TCBSWHardeningNeeded, attest.TCBConfigurationNeeded, attest.TCBConfigurationAndSWHardeningNeeded, attest.TCBOutOfDateConfigurationNeeded} {
		for _, tee := range []string{"sgx", "tdx"} {
			t.Run(status+" "+tee, func(t *testing.T) {
				f := newFixture(t, tee)
				f.resignQEIdentity(t, func(id *EnclaveIdentity) { id.TCBLevels[0].TCBStatus = status })
				claims, err := f.verify(t)
				if err != nil {
					t.Fatal(err)
				}
				if claims.TCB.Status != attest.TCBOutOfDate {
					t.Errorf("status %s, expected OutOfDate", claims.TCB.Status)
				}
				if got := claims.Attributes["tcb_qe_status"]; got != attest.TCBOutOfDate {
					t.Errorf("tcb_qe_status %v, expected OutOfDate", got)
				}
			})
		}
	}
}

// TestQEMiscSelectByteOrder matches a QE report with MISCSELECT 1 against
// QE Identities. QVL reads the miscselect and miscselectMask hex strings as
// the four bytes of the report field, which is little-endian, so
// "01000000" is the value 1.
func TestQEMiscSelectByteOrder(t *testing.T) {
	e, err := NewEmulator(EmulatorOptions{TEE: "sgx"})
	if err != nil {
		t.Fatal(err)
	}
	qe, err := ParseEnclaveReport(e.qeReport(make([]byte, 64), nil))
	if err != nil {
		t.Fatal(err)
	}
	qe.MiscSelect = 1
	for _, tc := range []struct {
		misc, mask string
		match      bool
	}{
		{"01000000", "FFFFFFFF", true},
		{"00000001", "FFFFFFFF", false},
		{"00000000", "FEFFFFFF", true},
		{"00000000", "FFFFFFFE", false},
	} {
		t.Run(tc.misc+" mask "+tc.mask, func(t *testing.T) {
			id := e.qeIdentity(time.Now(), time.Now().Add(time.Hour))
			id.MiscSelect, id.MiscSelectMask = tc.misc, tc.mask
			_, _, err := MatchQEIdentity(id, qe)
			if tc.match && err != nil {
				t.Fatalf("expected a match: %v", err)
			}
			if !tc.match && (err == nil || !strings.Contains(err.Error(), "MISCSELECT")) {
				t.Fatalf("error %v, expected a MISCSELECT mismatch", err)
			}
		})
	}
}

// TestTCBTypeChecked signs TCB Info of a TCB type other than 0, the only
// one whose levels compare the 16 SGX components one by one. QVL rejects
// other types as an unsupported TCB Info format.
func TestTCBTypeChecked(t *testing.T) {
	for _, tee := range []string{"sgx", "tdx"} {
		t.Run(tee, func(t *testing.T) {
			f := newFixture(t, tee)
			f.resignTCBInfo(t, func(info *TCBInfo) { info.TCBType = 1 })
			_, err := f.verify(t)
			if !errors.Is(err, attest.ErrUnsupported) {
				t.Fatalf("error %v, expected an ErrUnsupported error", err)
			}
			if !strings.Contains(err.Error(), "tcbType") {
				t.Errorf("error %q does not name tcbType", err)
			}
		})
	}
}

// resignFields replaces the collateral file name with body, edited as a
// JSON object and signed as the document key ("tcbInfo" or
// "enclaveIdentity") by the development TCB signing key. Edits that a Go
// struct cannot express, such as a missing or null field, reach the
// parser this way.
func (f *fixture) resignFields(t *testing.T, name, key string, body any, edit func(fields map[string]any)) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	edit(fields)
	doc, err := f.e.signedDocument(key, fields)
	if err != nil {
		t.Fatal(err)
	}
	f.files[name] = doc
}

// TestTCBTypeRequired signs TCB Info without a tcbType, or with null.
// Intel's TCB Info schema (versions 2 and 3) requires the field, and QVL
// (TcbInfo.cpp) rejects TCB Info without it instead of reading type 0.
func TestTCBTypeRequired(t *testing.T) {
	for _, tc := range []struct {
		name, tee string
		version2  bool
		edit      func(fields map[string]any)
	}{
		{"sgx missing", "sgx", false, func(m map[string]any) { delete(m, "tcbType") }},
		{"tdx missing", "tdx", false, func(m map[string]any) { delete(m, "tcbType") }},
		{"sgx version 2 missing", "sgx", true, func(m map[string]any) { delete(m, "tcbType") }},
		{"tdx null", "tdx", false, func(m map[string]any) { m["tcbType"] = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.tee)
			var body any = f.e.tcbInfo(f.now.Add(-time.Minute).UTC(), f.now.AddDate(0, 0, 30).UTC())
			if tc.version2 {
				body = f.tcbInfoVersion2()
			}
			f.resignFields(t, "tcb_info.json", "tcbInfo", body, tc.edit)
			_, err := f.verify(t)
			if !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("error %v, expected an ErrMalformed error", err)
			}
			if !strings.Contains(err.Error(), "tcbInfo.tcbType") {
				t.Errorf("error %q does not name tcbInfo.tcbType", err)
			}
			if !strings.Contains(err.Error(), "Intel PCS") {
				t.Errorf("error %q does not give the fix", err)
			}
		})
	}
}

// TestEvaluationDataNumberRequired signs TCB Info and QE Identities
// without a tcbEvaluationDataNumber, with null or with a negative number.
// Intel's schemas require the field, and QVL (TcbInfo.cpp,
// EnclaveIdentityV2.cpp) rejects a document whose field is missing or not
// an unsigned integer.
func TestEvaluationDataNumberRequired(t *testing.T) {
	const field = "tcbEvaluationDataNumber"
	for _, tc := range []struct {
		name, tee, file string
		edit            func(fields map[string]any)
	}{
		{"TCB Info missing sgx", "sgx", "tcb_info.json", func(m map[string]any) { delete(m, field) }},
		{"TCB Info missing tdx", "tdx", "tcb_info.json", func(m map[string]any) { delete(m, field) }},
		{"TCB Info null", "tdx", "tcb_info.json", func(m map[string]any) { m[field] = nil }},
		{"TCB Info negative", "sgx", "tcb_info.json", func(m map[string]any) { m[field] = -1 }},
		{"QE Identity missing sgx", "sgx", "qe_identity.json", func(m map[string]any) { delete(m, field) }},
		{"QE Identity missing tdx", "tdx", "qe_identity.json", func(m map[string]any) { delete(m, field) }},
		{"QE Identity negative", "tdx", "qe_identity.json", func(m map[string]any) { m[field] = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.tee)
			issued, next := f.now.Add(-time.Minute).UTC(), f.now.AddDate(0, 0, 30).UTC()
			docName := "tcbInfo"
			var body any = f.e.tcbInfo(issued, next)
			if tc.file == "qe_identity.json" {
				docName, body = "enclaveIdentity", f.e.qeIdentity(issued, next)
			}
			f.resignFields(t, tc.file, docName, body, tc.edit)
			_, err := f.verify(t)
			if !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("error %v, expected an ErrMalformed error", err)
			}
			if !strings.Contains(err.Error(), docName+"."+field) {
				t.Errorf("error %q does not name %s.%s", err, docName, field)
			}
			if !strings.Contains(err.Error(), "Intel PCS") {
				t.Errorf("error %q does not give the fix", err)
			}
		})
	}
}

// TestEvaluationDataNumbersReported signs TCB Info and QE Identities of
// equal and of different evaluation data numbers. QVL compares neither
// number, and Intel's QvE reports the lower of the two without rejecting,
// so verification succeeds, the claims carry the lower number and a
// mismatch, which means the documents come from different TCB recovery
// events, is a warning.
func TestEvaluationDataNumbersReported(t *testing.T) {
	for _, tc := range []struct {
		name              string
		tcbInfo, identity int
		lower             int
		warning           bool
	}{
		{"equal", 17, 17, 17, false},
		{"TCB Info newer", 18, 17, 17, true},
		{"QE Identity newer", 17, 18, 17, true},
	} {
		for _, tee := range []string{"sgx", "tdx"} {
			t.Run(tc.name+" "+tee, func(t *testing.T) {
				f := newFixture(t, tee)
				f.resignTCBInfo(t, func(info *TCBInfo) { info.TCBEvaluationDataNumber = tc.tcbInfo })
				f.resignQEIdentity(t, func(id *EnclaveIdentity) { id.TCBEvaluationDataNumber = tc.identity })
				claims, err := f.verify(t)
				if err != nil {
					t.Fatal(err)
				}
				if got := claims.Attributes["tcb_evaluation_data_number"]; got != tc.lower {
					t.Errorf("tcb_evaluation_data_number %v, expected %d", got, tc.lower)
				}
				var warning string
				for _, w := range claims.Warnings {
					if strings.Contains(w, "tcbEvaluationDataNumber") {
						warning = w
					}
				}
				if tc.warning && !strings.Contains(warning, fmt.Sprintf("%d", tc.tcbInfo)) {
					t.Errorf("warning %q does not give the TCB Info's number %d", warning, tc.tcbInfo)
				}
				if tc.warning && !strings.Contains(warning, fmt.Sprintf("%d", tc.identity)) {
					t.Errorf("warning %q does not give the QE Identity's number %d", warning, tc.identity)
				}
				if !tc.warning && warning != "" {
					t.Errorf("warning %q for equal numbers", warning)
				}
			})
		}
	}
}

// withPCKChain returns a version 4 or 5 quote with its type-5
// certification data replaced by chain. The signatures stay valid, because
// neither covers the certification data.
func withPCKChain(t *testing.T, quote, chain []byte) []byte {
	t.Helper()
	q, err := ParseQuote(quote)
	if err != nil {
		t.Fatal(err)
	}
	var qeCert []byte
	qeCert = append(qeCert, q.QEReport...)
	qeCert = append(qeCert, q.QEReportSignature...)
	qeCert = binary.LittleEndian.AppendUint16(qeCert, uint16(len(q.QEAuthData)))
	qeCert = append(qeCert, q.QEAuthData...)
	qeCert = binary.LittleEndian.AppendUint16(qeCert, certTypePCKChain)
	qeCert = binary.LittleEndian.AppendUint32(qeCert, uint32(len(chain)))
	qeCert = append(qeCert, chain...)

	sigData := append(append([]byte{}, q.Signature...), q.AttestationKey...)
	sigData = binary.LittleEndian.AppendUint16(sigData, certTypeQEReport)
	sigData = binary.LittleEndian.AppendUint32(sigData, uint32(len(qeCert)))
	sigData = append(sigData, qeCert...)
	out := binary.LittleEndian.AppendUint32(append([]byte{}, q.SignedData...), uint32(len(sigData)))
	return append(out, sigData...)
}

// TestPCKPathOfFourRejected issues the PCK certificate from a second CA
// below the PCK CA. Intel's PCK chain is leaf, PCK CA and root, and QVL
// takes the CA's revocation from the Root CA CRL, so a longer path would
// leave a CA whose revocation no CRL check covers.
func TestPCKPathOfFourRejected(t *testing.T) {
	f := newFixture(t, "tdx")
	notBefore, notAfter := f.now.Add(-time.Hour), f.now.Add(time.Hour)
	subKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	subCA, err := issue(caTemplate("Cloister emulated Intel SGX PCK Sub CA", 20, notBefore, notAfter), f.e.pckCA, subKey, f.e.pckCAKey)
	if err != nil {
		t.Fatal(err)
	}
	template := leafTemplate("Cloister emulated Intel SGX PCK Certificate", 21, notBefore, notAfter)
	for _, ext := range f.e.pck.Extensions {
		if ext.Id.Equal(OIDSGXExtensions) {
			template.ExtraExtensions = append(template.ExtraExtensions, ext)
		}
	}
	leaf, err := issue(template, subCA, f.e.pckKey, subKey)
	if err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, c := range []*x509.Certificate{leaf, subCA, f.e.pckCA, f.e.root} {
		chain = append(chain, pemCert(c)...)
	}
	crl, err := issueCRL(subCA, subKey, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	f.files["sub_ca_crl.der"] = crl

	_, err = f.verifyQuote(withPCKChain(t, f.quote(t), chain))
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("error %v, expected an ErrChain error", err)
	}
	if !strings.Contains(err.Error(), "4 certificates") {
		t.Errorf("error %q does not give the path length", err)
	}
}

// TestPCKKeyTypeChecked issues PCK certificates whose key is not ECDSA
// P-256, once under the PCK CA and once under a key that is not the CA's.
// Intel's PCK certificate profile fixes ECDSA P-256 and QVL reads the key
// as a P-256 point, so the key type is rejected before the chain is
// verified, whether the chain is sound or not.
func TestPCKKeyTypeChecked(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384Key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edKey, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	foreignCAKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []struct {
		name    string
		public  any
		keyType string
	}{
		{"RSA", &rsaKey.PublicKey, "RSA 2048-bit"},
		{"P-384", &p384Key.PublicKey, "ECDSA P-384"},
		{"Ed25519", edKey, "Ed25519"},
	} {
		for _, issuer := range []struct {
			name string
			key  *ecdsa.PrivateKey
		}{
			{"PCK CA", nil},
			{"foreign key", foreignCAKey},
		} {
			t.Run(key.name+" under "+issuer.name, func(t *testing.T) {
				f := newFixture(t, "sgx")
				// A copy of the PCK CA with another key names the CA as
				// issuer but signs with a key that is not the CA's.
				parent, signer := f.e.pckCA, f.e.pckCAKey
				if issuer.key != nil {
					foreign := *f.e.pckCA
					foreign.PublicKey = &issuer.key.PublicKey
					parent, signer = &foreign, issuer.key
				}
				template := leafTemplate("Cloister emulated Intel SGX PCK Certificate", 30, f.now.Add(-time.Hour), f.now.Add(time.Hour))
				for _, ext := range f.e.pck.Extensions {
					if ext.Id.Equal(OIDSGXExtensions) {
						template.ExtraExtensions = append(template.ExtraExtensions, ext)
					}
				}
				leaf := testcert.Issue(t, template, parent, key.public, signer)
				var chain []byte
				for _, c := range []*x509.Certificate{leaf, f.e.pckCA, f.e.root} {
					chain = append(chain, pemCert(c)...)
				}

				_, err = f.verifyQuote(withPCKChain(t, f.quote(t), chain))
				if !errors.Is(err, attest.ErrChain) {
					t.Fatalf("error %v, expected an ErrChain error", err)
				}
				if !strings.Contains(err.Error(), "PCK certificate") {
					t.Errorf("error %q does not name the PCK certificate", err)
				}
				if !strings.Contains(err.Error(), key.keyType) {
					t.Errorf("error %q does not name the key type %s", err, key.keyType)
				}
				if !strings.Contains(err.Error(), "ECDSA P-256") {
					t.Errorf("error %q does not name the expected key type ECDSA P-256", err)
				}
			})
		}
	}
}

// TestPublicKeyTypeNamed names the key types that the PCK key check
// reports, including X25519, which Go parses as an ECDH key, and an
// algorithm Go does not parse, which only its OID names.
func TestPublicKeyTypeNamed(t *testing.T) {
	x25519Key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Go parses X25519 keys in certificates but does not issue
	// certificates for them, so the key goes through its PKIX encoding.
	x25519DER, err := x509.MarshalPKIXPublicKey(x25519Key.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	x25519Public, err := x509.ParsePKIXPublicKey(x25519DER)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := issue(caTemplate("key type test CA", 1, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), nil, caKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	unknownSPKI, err := asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}{pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 3, 4}}, asn1.BitString{Bytes: []byte{1}, BitLength: 8}})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"P-256", ca, "ECDSA P-256"},
		{"X25519", &x509.Certificate{PublicKey: x25519Public, RawSubjectPublicKeyInfo: x25519DER}, "X25519"},
		{"unknown OID", &x509.Certificate{RawSubjectPublicKeyInfo: unknownSPKI}, "unknown (algorithm OID 1.2.3.4)"},
		{"unparsable", &x509.Certificate{RawSubjectPublicKeyInfo: []byte{0x30}}, "unparsable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := publicKeyType(tc.cert); got != tc.want {
				t.Errorf("publicKeyType = %q, expected %q", got, tc.want)
			}
		})
	}
}

// TestModuleStatusUnrecognized gives a TDX module level a platform-only
// status. QVL accepts UpToDate, OutOfDate and Revoked for a module and
// fails the quote with an unrecognized status otherwise, where converging
// would keep the platform's status.
func TestModuleStatusUnrecognized(t *testing.T) {
	for _, status := range []string{attest.TCBConfigurationNeeded, attest.TCBSWHardeningNeeded, attest.TCBOutOfDateConfigurationNeeded} {
		t.Run(status, func(t *testing.T) {
			info, ext, td := tdxPlatform(t)
			info.TDXModuleIdentities[0].TCBLevels[0].TCBStatus = status
			_, err := EvaluatePlatform(info, ext, td)
			if !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("error %v, expected an ErrMalformed error", err)
			}
			if !strings.Contains(err.Error(), "tdxModuleIdentities") {
				t.Errorf("error %q does not name the field", err)
			}
			if !strings.Contains(err.Error(), status) {
				t.Errorf("error %q does not name the status", err)
			}
		})
	}
}

// TestTCBLevelsInQVLOrder signs TCB Info whose levels are not in QVL's
// order. QVL sorts the levels by SGX component SVNs, PCESVN and TDX
// component SVNs before it takes the first one the platform meets, so the
// JSON order must not decide the status, and two equal levels are an
// error.
func TestTCBLevelsInQVLOrder(t *testing.T) {
	for _, tee := range []string{"sgx", "tdx"} {
		t.Run(tee+" order", func(t *testing.T) {
			f := newFixture(t, tee)
			f.resignTCBInfo(t, func(info *TCBInfo) {
				lower, higher := info.TCBLevels[0], info.TCBLevels[1]
				lower.TCB.SGXComponents = slices.Clone(lower.TCB.SGXComponents)
				lower.TCB.SGXComponents[0].SVN = int(emulatedCompSVN[0]) - 1
				higher.TCB.SGXComponents = slices.Clone(higher.TCB.SGXComponents)
				higher.TCB.SGXComponents[0].SVN = int(emulatedCompSVN[0])
				for i := 1; i < 16; i++ {
					higher.TCB.SGXComponents[i].SVN = 0
				}
				// The UpToDate level comes first in the JSON, but QVL
				// sorts the OutOfDate level, whose first component is
				// higher, before it.
				info.TCBLevels = []TCBLevel{lower, higher}
			})
			claims, err := f.verify(t)
			if err != nil {
				t.Fatal(err)
			}
			if claims.TCB.Status != attest.TCBOutOfDate {
				t.Errorf("status %s, expected OutOfDate from the level QVL matches first", claims.TCB.Status)
			}
		})
		t.Run(tee+" duplicate", func(t *testing.T) {
			f := newFixture(t, tee)
			f.resignTCBInfo(t, func(info *TCBInfo) {
				dup := info.TCBLevels[1]
				dup.TCBStatus = attest.TCBUpToDate
				info.TCBLevels = append(info.TCBLevels, dup)
			})
			_, err := f.verify(t)
			if !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("error %v, expected an ErrMalformed error", err)
			}
			if !strings.Contains(err.Error(), "tcbLevels") {
				t.Errorf("error %q does not name tcbLevels", err)
			}
		})
	}
}
