package collateral

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/internal/snpabi"
)

// importError writes m into dir, imports the bundle into a new backend and
// returns the error, checking that a failed import stored nothing.
func importError(t *testing.T, dir string, m *Manifest) error {
	t.Helper()
	writeManifest(t, dir, m)
	backend := DiskBackend{Dir: t.TempDir()}
	_, err := ImportBundle(context.Background(), dir, backend)
	if err != nil {
		stored, listErr := backend.List(context.Background())
		if listErr != nil {
			t.Fatal(listErr)
		}
		if len(stored) != 0 {
			t.Errorf("rejected import stored %d entries, want none", len(stored))
		}
	}
	return err
}

// checkImportError fails t unless err contains every substring of want.
func checkImportError(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("import failed: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("import succeeded, want an error containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

// setChainFile writes body as the issuer chain file of me under header.
func setChainFile(t *testing.T, dir string, me *ManifestEntry, header string, body []byte) {
	t.Helper()
	file := strings.TrimSuffix(me.File, filepath.Ext(me.File)) + "-issuer-chain.pem"
	if err := os.WriteFile(filepath.Join(dir, file), body, 0o644); err != nil {
		t.Fatal(err)
	}
	me.Headers = map[string]string{header: file}
}

func TestImportBundleChecksIntelKeys(t *testing.T) {
	qeIdentity := corpusFile(t, pcsCase+"/qe_identity.json")
	tcbInfo := corpusFile(t, pcsCase+"/tcb_info.json")
	qeChain := corpusFile(t, pcsCase+"/qe_identity_issuer_chain.pem")
	pckChain := corpusFile(t, pcsCase+"/pck_crl_issuer_chain.pem")
	tests := []struct {
		name    string
		edit    func(t *testing.T, dir string, m *Manifest)
		wantErr []string
	}{
		{
			name: "TCB Info key holding QE Identity",
			edit: func(t *testing.T, dir string, m *Manifest) {
				me := bundleItem(t, m, bundleTCBKey)
				rewriteBundleFile(t, dir, me, qeIdentity)
				me.Headers = nil
			},
			wantErr: []string{`key "` + bundleTCBKey + `"`, "names the Intel TDX TCB Info for FMSPC 90C06F000000",
				"contains Intel QE Identity with id TD_QE", "export the bundle again"},
		},
		{
			name: "TCB Info key with another FMSPC",
			edit: func(t *testing.T, dir string, m *Manifest) {
				bundleItem(t, m, bundleTCBKey).Key = "pcs/tdx/tcb/00906EA10000"
			},
			wantErr: []string{`key "pcs/tdx/tcb/00906EA10000"`, "FMSPC 00906EA10000",
				`the TCB Info's fmspc is "90c06f000000"`, "export the bundle again"},
		},
		{
			name: "SGX TCB Info key holding TDX TCB Info",
			edit: func(t *testing.T, dir string, m *Manifest) {
				bundleItem(t, m, bundleTCBKey).Key = "pcs/sgx/tcb/90C06F000000"
			},
			wantErr: []string{"Intel SGX TCB Info", `the document's id is "TDX", not SGX`},
		},
		{
			name: "TCB Info key with lower-case FMSPC",
			edit: func(t *testing.T, dir string, m *Manifest) {
				bundleItem(t, m, bundleTCBKey).Key = "pcs/tdx/tcb/90c06f000000"
			},
			wantErr: []string{`key "pcs/tdx/tcb/90c06f000000"`, "not 12 upper-case hexadecimal digits"},
		},
		{
			name: "PCK CRL key holding TCB Info",
			edit: func(t *testing.T, dir string, m *Manifest) {
				rewriteBundleFile(t, dir, bundleItem(t, m, bundleCRLKey), tcbInfo)
			},
			wantErr: []string{"the Intel PCK CRL of the platform CA", "contains Intel TCB Info with id TDX"},
		},
		{
			name: "processor CRL key holding platform CRL",
			edit: func(t *testing.T, dir string, m *Manifest) {
				bundleItem(t, m, bundleCRLKey).Key = "pcs/pckcrl/processor"
			},
			wantErr: []string{"the Intel PCK CRL of the processor CA",
				`the CRL's issuer common name is "Intel SGX PCK Platform CA"`},
		},
		{
			name: "root CA CRL key holding a certificate chain",
			edit: func(t *testing.T, dir string, m *Manifest) {
				me := bundleItem(t, m, bundleCRLKey)
				me.Key = "pcs/rootcacrl"
				rewriteBundleFile(t, dir, me, pckChain)
			},
			wantErr: []string{"the Intel SGX Root CA CRL", "contains an X.509 certificate"},
		},
		{
			name: "unknown key",
			edit: func(t *testing.T, dir string, m *Manifest) {
				bundleItem(t, m, bundleCRLKey).Key = "pcs/pckcrl"
			},
			wantErr: []string{`key "pcs/pckcrl"`, "names no item that Cloister fetches", "pcs/pckcrl/processor|platform"},
		},
		{
			name: "chain under a header of another item",
			edit: func(t *testing.T, dir string, m *Manifest) {
				me := bundleItem(t, m, bundleTCBKey)
				for name, file := range me.Headers {
					delete(me.Headers, name)
					me.Headers["SGX-PCK-CRL-Issuer-Chain"] = file
				}
			},
			wantErr: []string{`header "SGX-PCK-CRL-Issuer-Chain"`,
				"comes with the issuer chain header TCB-Info-Issuer-Chain or SGX-TCB-Info-Issuer-Chain"},
		},
		{
			name: "chain on an item that has none",
			edit: func(t *testing.T, dir string, m *Manifest) {
				me := bundleItem(t, m, bundleCRLKey)
				me.Key = "pcs/rootcacrl"
				rewriteBundleFile(t, dir, me, corpusFile(t, pcsCase+"/root_ca_crl.der"))
				setChainFile(t, dir, me, "SGX-PCK-CRL-Issuer-Chain", pckChain)
			},
			wantErr: []string{"the Intel SGX Root CA CRL comes with no issuer chain"},
		},
		{
			name: "chain of another item",
			edit: func(t *testing.T, dir string, m *Manifest) {
				setChainFile(t, dir, bundleItem(t, m, bundleCRLKey), "SGX-PCK-CRL-Issuer-Chain", qeChain)
			},
			wantErr: []string{`"Intel SGX TCB Signing", did not sign the Intel PCK CRL of the platform CA`},
		},
		{
			name: "chain that is not certificates",
			edit: func(t *testing.T, dir string, m *Manifest) {
				setChainFile(t, dir, bundleItem(t, m, bundleTCBKey), "TCB-Info-Issuer-Chain", []byte("not a chain"))
			},
			wantErr: []string{"issuer chain file item-", "has text outside PEM blocks at byte 0"},
		},
		{
			name: "empty chain",
			edit: func(t *testing.T, dir string, m *Manifest) {
				setChainFile(t, dir, bundleItem(t, m, bundleTCBKey), "TCB-Info-Issuer-Chain", nil)
			},
			wantErr: []string{"contains no certificate"},
		},
		{
			name: "TCB Info chain on a CRL",
			edit: func(t *testing.T, dir string, m *Manifest) {
				setChainFile(t, dir, bundleItem(t, m, bundleCRLKey), "SGX-PCK-CRL-Issuer-Chain", tcbChainWithoutRoot(t))
			},
			wantErr: []string{"did not sign the Intel PCK CRL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, m := writeTestBundle(t)
			tt.edit(t, dir, m)
			checkImportError(t, importError(t, dir, m), tt.wantErr)
		})
	}
}

// tcbChainWithoutRoot returns the TCB Info issuer chain without its root,
// as ExportBundle writes it.
func tcbChainWithoutRoot(t *testing.T) []byte {
	t.Helper()
	return stripSelfSigned(corpusFile(t, pcsCase+"/tcb_info_issuer_chain.pem"))
}

func TestImportBundleChecksTCBInfoSignature(t *testing.T) {
	dir, m := writeTestBundle(t)
	me := bundleItem(t, m, bundleTCBKey)
	body := corpusFile(t, pcsCase+"/tcb_info.json")
	// Changing a digit of the signed object keeps the document valid JSON
	// with the same FMSPC and id, so only the signature check finds it.
	edited := strings.Replace(string(body), `"tcbEvaluationDataNumber":18`, `"tcbEvaluationDataNumber":19`, 1)
	if edited == string(body) {
		t.Fatal("corpus TCB Info has no tcbEvaluationDataNumber 18 to edit")
	}
	rewriteBundleFile(t, dir, me, []byte(edited))
	checkImportError(t, importError(t, dir, m),
		[]string{`"Intel SGX TCB Signing", did not sign the Intel TDX TCB Info`, "the signature does not verify"})
}

// snpCase is a corpus folder with a Milan VCEK and its report.
const snpCase = "snp/milan-vcek-v2-cmc"

// snpVLEKCase is a corpus folder with a Milan VLEK and its ASVK and ARK.
const snpVLEKCase = "snp/milan-vlek-v3-aws-trustee"

// writeKDSBundle exports a cache that contains the corpus case's VCEK under
// the key that KDS.requests builds from its report, and the ASK under the
// cert_chain key.
func writeKDSBundle(t *testing.T) (string, *Manifest, string) {
	t.Helper()
	report := corpusFile(t, snpCase+"/report.bin")
	// CHIP_ID is at offset 0x1A0 of an SEV-SNP attestation report and
	// REPORTED_TCB at 0x180.
	q := Query{TEE: "snp", Product: "Milan", SigningKey: "VCEK", ChipID: report[0x1a0 : 0x1a0+snpabi.ChipIDSize],
		ReportedTCB: binary.LittleEndian.Uint64(report[0x180:])}
	reqs, err := NewKDS("https://kds.example.test", FetcherOptions{}).requests(q)
	if err != nil {
		t.Fatal(err)
	}

	vcekKey := reqs[len(reqs)-1].key
	if !strings.HasPrefix(vcekKey, "kds/vcek/Milan/") || strings.Count(vcekKey, "/") != 4 {
		t.Fatalf("last KDS request key %q is not the VCEK's", vcekKey)
	}

	fetched := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	vcek := corpusFile(t, snpCase+"/vcek.der")
	chain := corpusFile(t, snpCase+"/ask_ark.pem")
	dir, m := exportEntries(t,
		&Entry{Key: vcekKey, URL: "https://kds.example.test/vcek", Body: vcek, FetchedAt: fetched, NextUpdate: nextUpdateOf(vcek)},
		&Entry{Key: "kds/vcek/Milan/cert_chain", URL: "https://kds.example.test/cert_chain", Body: chain, FetchedAt: fetched},
	)
	return dir, m, vcekKey
}

func TestImportBundleChecksKDSKeys(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(t *testing.T, dir string, m *Manifest, vcekKey string)
		wantErr []string
	}{
		{
			name: "unchanged",
			edit: func(*testing.T, string, *Manifest, string) {},
		},
		{
			name: "VCEK key holding the certificate chain",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				rewriteBundleFile(t, dir, bundleItem(t, m, vcekKey), corpusFile(t, snpCase+"/ask_ark.pem"))
			},
			wantErr: []string{"names the AMD KDS VCEK for a Milan chip at blSPL=", "2 items where one is expected"},
		},
		{
			name: "VCEK key holding a CRL",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				rewriteBundleFile(t, dir, bundleItem(t, m, vcekKey), corpusFile(t, pcsCase+"/pck_crl.der"))
			},
			wantErr: []string{"names the AMD KDS VCEK for a Milan chip at blSPL=", "but the file contains a CRL", "export the bundle again"},
		},
		{
			name: "VCEK key of another chip",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				me := bundleItem(t, m, vcekKey)
				parts := strings.Split(vcekKey, "/")
				parts[3] = strings.Repeat("ab", snpabi.ChipIDSize)
				me.Key = strings.Join(parts, "/")
			},
			wantErr: []string{"the certificate's hwid extension (1.3.6.1.4.1.3704.1.4) is"},
		},
		{
			name: "VCEK key of another TCB",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				me := bundleItem(t, m, vcekKey)
				parts := strings.Split(vcekKey, "/")
				parts[4] = "blSPL=255&teeSPL=255&snpSPL=255&ucodeSPL=255"
				me.Key = strings.Join(parts, "/")
			},
			wantErr: []string{"the certificate's blSPL extension (1.3.6.1.4.1.3704.1.3.1) is not 255"},
		},
		{
			name: "VCEK key of another product",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				me := bundleItem(t, m, vcekKey)
				me.Key = strings.Replace(vcekKey, "/Milan/", "/Genoa/", 1)
			},
			wantErr: []string{`productName extension (1.3.6.1.4.1.3704.1.2) is "Milan-B0", not Genoa`},
		},
		{
			name: "VCEK key with a malformed TCB",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				me := bundleItem(t, m, vcekKey)
				parts := strings.Split(vcekKey, "/")
				parts[4] = "snpSPL=1"
				me.Key = strings.Join(parts, "/")
			},
			wantErr: []string{`the TCB "snpSPL=1" of the key is not in the form blSPL=0&teeSPL=0&snpSPL=0&ucodeSPL=0`},
		},
		{
			name: "certificate chain key holding a CRL",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				rewriteBundleFile(t, dir, bundleItem(t, m, "kds/vcek/Milan/cert_chain"), corpusFile(t, pcsCase+"/pck_crl.der"))
			},
			wantErr: []string{"names the AMD KDS VCEK certificate chain for Milan", "contains a CRL"},
		},
		{
			name: "KDS CRL key holding a certificate",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				bundleItem(t, m, "kds/vcek/Milan/cert_chain").Key = "kds/vcek/Milan/crl"
			},
			wantErr: []string{"names the AMD KDS VCEK CRL for Milan", "contains an X.509 certificate"},
		},
		{
			name: "certificate chain key of another product",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				bundleItem(t, m, "kds/vcek/Milan/cert_chain").Key = "kds/vcek/Genoa/cert_chain"
			},
			wantErr: []string{"names the AMD KDS VCEK certificate chain for Genoa",
				`a certificate's subject common name is "SEV-Milan", not SEV-Genoa or ARK-Genoa`, "export the bundle again"},
		},
		{
			name: "VLEK certificate chain key holding the VCEK chain",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				bundleItem(t, m, "kds/vcek/Milan/cert_chain").Key = "kds/vlek/Milan/cert_chain"
			},
			wantErr: []string{"names the AMD KDS VLEK certificate chain for Milan",
				`a certificate's subject common name is "SEV-Milan", not SEV-VLEK-Milan or ARK-Milan`},
		},
		{
			name: "VCEK certificate chain key holding the VLEK chain",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				rewriteBundleFile(t, dir, bundleItem(t, m, "kds/vcek/Milan/cert_chain"), corpusFile(t, snpVLEKCase+"/ask_ark.pem"))
			},
			wantErr: []string{"names the AMD KDS VCEK certificate chain for Milan",
				`a certificate's subject common name is "SEV-VLEK-Milan", not SEV-Milan or ARK-Milan`},
		},
		{
			name: "VLEK certificate chain",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				me := bundleItem(t, m, "kds/vcek/Milan/cert_chain")
				rewriteBundleFile(t, dir, me, corpusFile(t, snpVLEKCase+"/ask_ark.pem"))
				me.Key = "kds/vlek/Milan/cert_chain"
			},
		},
		{
			name: "KDS CRL key holding an Intel CRL",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				me := bundleItem(t, m, "kds/vcek/Milan/cert_chain")
				rewriteBundleFile(t, dir, me, corpusFile(t, pcsCase+"/pck_crl.der"))
				me.Key = "kds/vcek/Milan/crl"
			},
			wantErr: []string{"names the AMD KDS VCEK CRL for Milan",
				`the CRL's issuer common name is "Intel SGX PCK Platform CA", not ARK-Milan`},
		},
		{
			name: "VLEK key with a chip ID",
			edit: func(t *testing.T, dir string, m *Manifest, vcekKey string) {
				me := bundleItem(t, m, vcekKey)
				me.Key = strings.Replace(vcekKey, "kds/vcek/", "kds/vlek/", 1)
			},
			wantErr: []string{"names no item that Cloister fetches"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, m, vcekKey := writeKDSBundle(t)
			tt.edit(t, dir, m, vcekKey)
			checkImportError(t, importError(t, dir, m), tt.wantErr)
		})
	}
}

// The KDS CRL of a product is issued by that product's ARK. The corpus
// contains no KDS CRL, so the test signs one with a key of its own under the
// ARK's name.
func TestImportBundleChecksKDSCRLIssuer(t *testing.T) {
	tests := []struct {
		name    string
		key     string
		issuer  string
		wantErr []string
	}{
		{name: "Milan VCEK CRL", key: "kds/vcek/Milan/crl", issuer: "ARK-Milan"},
		{name: "Genoa VLEK CRL", key: "kds/vlek/Genoa/crl", issuer: "ARK-Genoa"},
		{name: "Genoa CRL under a Milan key", key: "kds/vcek/Milan/crl", issuer: "ARK-Genoa",
			wantErr: []string{"names the AMD KDS VCEK CRL for Milan", `the CRL's issuer common name is "ARK-Genoa", not ARK-Milan`, "export the bundle again"}},
		{name: "CRL of an ASK", key: "kds/vlek/Milan/crl", issuer: "SEV-Milan",
			wantErr: []string{"names the AMD KDS VLEK CRL for Milan", `the CRL's issuer common name is "SEV-Milan", not ARK-Milan`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crl, next := signedCRL(t, tt.issuer)
			dir, m := exportEntries(t, &Entry{Key: tt.key, URL: "https://kds.example.test/crl", Body: crl,
				FetchedAt: time.Now().Add(-time.Minute).UTC().Truncate(time.Second), NextUpdate: next})
			checkImportError(t, importError(t, dir, m), tt.wantErr)
		})
	}
}

// signedCRL returns an empty DER CRL issued by a new self-signed CA named
// issuerName, and its nextUpdate.
func signedCRL(t *testing.T, issuerName string) ([]byte, time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: issuerName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	next := now.Add(12 * time.Hour)
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Minute), NextUpdate: next}, ca, key)
	if err != nil {
		t.Fatal(err)
	}
	return crl, next
}

func TestImportBundleChecksOCSPKeys(t *testing.T) {
	pki := newOCSPPKI(t)
	now := time.Now()
	body := pki.response(t, crypto.SHA256, now.Add(-time.Hour), now.Add(24*time.Hour))
	key := OCSPCacheKey(pki.cert, pki.ca)
	tests := []struct {
		name    string
		key     string
		body    []byte
		wantErr []string
	}{
		{name: "matching serial", key: key, body: body},
		{name: "other serial", key: key[:strings.LastIndex(key, "/")] + "/ff", body: body,
			wantErr: []string{"names the OCSP response for serial number ff", "is about serial numbers 2 only"}},
		{name: "short issuer key hash", key: "ocsp/abcd/2", body: body,
			wantErr: []string{`the issuer key hash "abcd" of the key is not 32 bytes in hexadecimal`}},
		{name: "OCSP key holding a CRL", key: key, body: corpusFile(t, pcsCase+"/pck_crl.der"),
			wantErr: []string{"names the OCSP response for serial number 2", "contains a CRL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, m := exportEntries(t, &Entry{Key: tt.key, URL: "https://ocsp.example.test", Body: tt.body,
				FetchedAt: now.Add(-time.Minute).UTC().Truncate(time.Second)})
			checkImportError(t, importError(t, dir, m), tt.wantErr)
		})
	}
}

func TestExportBundleSkipsRootOnlyChain(t *testing.T) {
	crl := corpusFile(t, pcsCase+"/pck_crl.der")
	dir, m := exportEntries(t, &Entry{Key: bundleCRLKey, URL: "https://pcs.example.test/pckcrl", Body: crl,
		FetchedAt: time.Now().Add(-time.Hour).UTC().Truncate(time.Second), NextUpdate: nextUpdateOf(crl),
		Headers: map[string]string{"SGX-PCK-CRL-Issuer-Chain": string(corpusFile(t, pcsCase+"/trusted_root.pem"))}})
	if headers := bundleItem(t, m, bundleCRLKey).Headers; len(headers) != 0 {
		t.Errorf("exported chain files = %v, want none for a chain of roots only", headers)
	}
	if err := importError(t, dir, m); err != nil {
		t.Errorf("import failed: %v", err)
	}
}

// checkVCEK reads the KDS extensions with the parser that verifies reports,
// so a VCEK that verification would reject cannot pass the key check.
func TestCheckVCEKExtensions(t *testing.T) {
	cert, err := x509.ParseCertificate(corpusFile(t, snpCase+"/vcek.der"))
	if err != nil {
		t.Fatal(err)
	}
	certified, err := snpabi.ParseKDSExtensions(cert.Extensions, "VCEK")
	if err != nil {
		t.Fatal(err)
	}
	params := snpabi.TCBLayout(snpabi.ProductMilan)
	spl := make([]uint8, len(params))
	for i, p := range params {
		spl[i] = certified.SPL[p.SPLArc]
	}
	oid := func(arc int) asn1.ObjectIdentifier { return append(slices.Clone(snpabi.OIDKDS), arc) }
	withValue := func(arc int, value []byte) []pkix.Extension {
		exts := slices.Clone(cert.Extensions)
		for i := range exts {
			if exts[i].Id.Equal(oid(arc)) {
				exts[i].Value = value
			}
		}
		return exts
	}
	wrappedHWID, _ := asn1.Marshal(certified.HWID)
	printable, _ := asn1.MarshalWithParams("Milan-B0", "printable")
	otherProduct, _ := asn1.MarshalWithParams("MilanX-B0", "ia5")
	var hwidExt pkix.Extension
	for _, e := range cert.Extensions {
		if e.Id.Equal(oid(snpabi.KDSHWID)) {
			hwidExt = e
		}
	}

	tests := []struct {
		name    string
		exts    []pkix.Extension
		wantErr string
	}{
		{"real VCEK", cert.Extensions, ""},
		{"hwid in an OCTET STRING", withValue(snpabi.KDSHWID, wrappedHWID), ""},
		{"repeated hwid", append(slices.Clone(cert.Extensions), hwidExt), "extension 1.3.6.1.4.1.3704.1.4 appears twice"},
		{"productName not IA5String", withValue(snpabi.KDSProductName, printable), "not an IA5String"},
		{"productName of another product line", withValue(snpabi.KDSProductName, otherProduct), `productName extension (1.3.6.1.4.1.3704.1.2) is "MilanX-B0", not Milan`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			edited := *cert
			edited.Extensions = tc.exts
			err := checkVCEK(&edited, snpabi.ProductMilan, certified.HWID, params, spl)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}
