package azurevtpm

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/testcert"
	"github.com/cloister-dev/cloister/tee/snp"
)

// reviewForgedChain returns a self-signed CA certificate named like AMD's
// Milan root and a VCEK-named certificate it issued, as someone forging
// evidence would write them.
func reviewForgedChain(t *testing.T) (root, leaf *x509.Certificate) {
	t.Helper()
	key := testcert.ECDSAKey(t, elliptic.P384())
	root = testcert.Issue(t, testcert.Template(1, "ARK-Milan", true, x509.KeyUsageCertSign), nil, &key.PublicKey, key)
	leaf = testcert.Issue(t, testcert.Template(2, "SEV-VCEK", false, x509.KeyUsageCertSign), root, &key.PublicKey, key)
	return root, leaf
}

// TestReviewEvidenceRootNotTrusted passes a root inside the evidence's vcek
// field: the roots chosen for the hardware report must stay AMD's.
func TestReviewEvidenceRootNotTrusted(t *testing.T) {
	forged, leaf := reviewForgedChain(t)
	vcek := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: forged.Raw})...)

	opts, err := hardwareOptions(&Evidence{VCEK: vcek}, attest.Options{})
	if err != nil {
		t.Fatalf("hardwareOptions: %v", err)
	}
	roots, err := attest.Roots(context.Background(), opts, collateral.Query{TEE: "snp"}, snp.EmbeddedRoots())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roots {
		if bytes.Equal(r.Raw, forged.Raw) {
			t.Fatal("a self-signed certificate from the evidence's vcek field became a trust anchor")
		}
	}
	if len(roots) != len(snp.EmbeddedRoots()) {
		t.Errorf("%d roots, expected the %d embedded AMD roots", len(roots), len(snp.EmbeddedRoots()))
	}
}

func TestReviewEvidenceRootOnlyRejected(t *testing.T) {
	forged, _ := reviewForgedChain(t)
	vcek := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: forged.Raw})
	if _, err := hardwareOptions(&Evidence{VCEK: vcek}, attest.Options{}); !errors.Is(err, attest.ErrMalformed) {
		t.Fatalf("error %v, expected an ErrMalformed error for a vcek field holding only a root", err)
	}
}

// reviewHCLReport builds an SEV-SNP HCL report with the given header and
// request versions around runtime data.
func reviewHCLReport(version, requestVersion uint32, runtime []byte) []byte {
	b := make([]byte, variableDataOffset+len(runtime))
	copy(b, "HCLA")
	le := binary.LittleEndian
	le.PutUint32(b[4:], version)
	le.PutUint32(b[8:], uint32(len(b)))
	le.PutUint32(b[12:], 2)
	req := b[requestHeaderOffset:]
	le.PutUint32(req[0:], uint32(requestHeaderSize+len(runtime)))
	le.PutUint32(req[4:], requestVersion)
	le.PutUint32(req[8:], ReportTypeSNP)
	le.PutUint32(req[12:], 1)
	le.PutUint32(req[16:], uint32(len(runtime)))
	copy(b[variableDataOffset:], runtime)
	return b
}

func TestReviewHCLVersionChecked(t *testing.T) {
	runtime := []byte(`{"keys":[]}`)
	for _, tc := range []struct {
		name                    string
		version, requestVersion uint32
		ok                      bool
	}{
		{"version 1", 1, 1, true},
		{"version 2", 2, 1, true},
		{"unknown header version", 49152, 1, false},
		{"header version 0", 0, 1, false},
		{"unknown request version", 1, 7, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHCLReport(reviewHCLReport(tc.version, tc.requestVersion, runtime))
			switch {
			case tc.ok && err != nil:
				t.Fatalf("ParseHCLReport: %v", err)
			case !tc.ok && !errors.Is(err, attest.ErrUnsupported):
				t.Fatalf("error %v, expected an ErrUnsupported error naming the version", err)
			}
		})
	}
}

func TestReviewHCLReportSizeChecked(t *testing.T) {
	b := reviewHCLReport(1, 1, []byte(`{"keys":[]}`))
	binary.LittleEndian.PutUint32(b[8:], uint32(len(b)+1))
	if _, err := ParseHCLReport(b); !errors.Is(err, attest.ErrMalformed) {
		t.Fatalf("error %v, expected an ErrMalformed error for a report size that does not match", err)
	}
}
