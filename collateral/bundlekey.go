package collateral

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/cloister-dev/cloister/internal/pcsdoc"
	"github.com/cloister-dev/cloister/internal/snpabi"
)

// keySpec is the description of the body that a cache key names, read
// from a key that the request builders of KDS, PCS and OCSP form.
type keySpec struct {
	// description names the item for messages ("Intel TDX TCB Info for
	// FMSPC 90C06F000000").
	description string
	// kind is the kind of every item of the body.
	kind Kind
	// single is set when the body contains exactly one item.
	single bool
	// checkBody compares the body's fields with the key, when the key
	// names any.
	checkBody func(s *Set) error
	// chainHeaders lists the response headers whose issuer chain may
	// accompany the body, as PCS.requests names them.
	chainHeaders []string
}

// kindNames are the names of the kinds in messages.
var kindNames = map[Kind]string{
	KindCertificate: "an X.509 certificate",
	KindCRL:         "a CRL",
	KindPublicKey:   "a public key",
	KindTCBInfo:     "Intel TCB Info",
	KindQEIdentity:  "Intel QE Identity",
	KindJWKS:        "a JSON Web Key Set",
	KindJSON:        "a JSON document",
	KindXML:         "an XML document",
	KindOCSP:        "an OCSP response",
}

// parseCacheKey returns the keySpec of the body that key names, or an error when
// key is not a key that KDS.requests, PCS.requests or OCSPCacheKey forms.
func parseCacheKey(key string) (*keySpec, error) {
	parts := strings.Split(key, "/")
	switch parts[0] {
	case "kds":
		return parseKDSKey(parts)
	case "pcs":
		return parsePCSKey(parts)
	case "ocsp":
		return parseOCSPKey(parts)
	}
	return nil, errUnknownKey
}

// errUnknownKey lists the key forms in the message of a key that has none
// of them.
var errUnknownKey = errors.New("the key has none of the forms kds/vcek|vlek/<product>/cert_chain|crl, " +
	"kds/vcek/<product>/<hwid>/<tcb>, pcs/sgx|tdx/tcb/<FMSPC>, pcs/sgx|tdx/qe/identity, " +
	"pcs/pckcrl/processor|platform, pcs/rootcacrl and ocsp/<issuer key SHA-256>/<serial>")

func parseKDSKey(parts []string) (*keySpec, error) {
	if len(parts) < 4 || (parts[1] != "vcek" && parts[1] != "vlek") || !slices.Contains(snpabi.Products, parts[2]) {
		return nil, errUnknownKey
	}
	keyType, product := strings.ToUpper(parts[1]), parts[2]
	// AMD names each product's root key (ARK) "ARK-<product>", and the
	// intermediate that issues its VCEKs (ASK) "SEV-<product>" and its
	// VLEKs (ASVK) "SEV-VLEK-<product>". The ARK signs the KDS CRL.
	rootName := "ARK-" + product
	intermediateName := "SEV-" + product
	if keyType == "VLEK" {
		intermediateName = "SEV-VLEK-" + product
	}
	switch {
	case len(parts) == 4 && parts[3] == "cert_chain":
		return &keySpec{
			description: fmt.Sprintf("the AMD KDS %s certificate chain for %s", keyType, product),
			kind:        KindCertificate,
			checkBody:   func(s *Set) error { return checkKDSChainNames(s, intermediateName, rootName) },
		}, nil
	case len(parts) == 4 && parts[3] == "crl":
		return &keySpec{
			description: fmt.Sprintf("the AMD KDS %s CRL for %s", keyType, product),
			kind:        KindCRL,
			single:      true,
			checkBody: func(s *Set) error {
				if cn := s.Items[0].CRL.Issuer.CommonName; cn != rootName {
					return fmt.Errorf("the CRL's issuer common name is %q, not %s", cn, rootName)
				}
				return nil
			},
		}, nil
	case len(parts) == 5 && keyType == "VCEK":
		return parseVCEKKey(product, parts[3], parts[4])
	}
	return nil, errUnknownKey
}

// checkKDSChainNames checks that every certificate of a KDS certificate
// chain is the intermediate or the root that its key names.
func checkKDSChainNames(s *Set, intermediateName, rootName string) error {
	for _, it := range s.Items {
		if cn := it.Certificate.Subject.CommonName; cn != intermediateName && cn != rootName {
			return fmt.Errorf("a certificate's subject common name is %q, not %s or %s", cn, intermediateName, rootName)
		}
	}
	return nil
}

// parseVCEKKey reads the hardware ID and TCB parts of a VCEK key, which
// KDS.requests forms from the chip ID and kdsTCB.
func parseVCEKKey(product, hwidHex, tcb string) (*keySpec, error) {
	hwid, err := hex.DecodeString(hwidHex)
	expectedSize := snpabi.HWIDSize(product)
	if err != nil || len(hwid) != expectedSize {
		return nil, fmt.Errorf("the hardware ID %q of the key is not %d bytes in hexadecimal", hwidHex, expectedSize)
	}
	params := snpabi.TCBLayout(product)
	fields := strings.Split(tcb, "&")
	errTCB := fmt.Errorf("the TCB %q of the key is not in the form %s", tcb, kdsTCB(product, 0))
	if len(fields) != len(params) {
		return nil, errTCB
	}
	spl := make([]uint8, len(params))
	for i, field := range fields {
		name, value, _ := strings.Cut(field, "=")
		n, err := strconv.ParseUint(value, 10, 8)
		if name != params[i].KDSParameter || err != nil {
			return nil, errTCB
		}
		spl[i] = uint8(n)
	}
	spec := &keySpec{
		description: fmt.Sprintf("the AMD KDS VCEK for a %s chip at %s", product, tcb),
		kind:        KindCertificate,
		single:      true,
	}
	spec.checkBody = func(s *Set) error { return checkVCEK(s.Items[0].Certificate, product, hwid, params, spl) }
	return spec, nil
}

// checkVCEK compares a VCEK's subject, productName, hwid and security patch
// level extensions with the values of its cache key. spl contains the value of
// each of params.
func checkVCEK(cert *x509.Certificate, product string, hwid []byte, params []snpabi.TCBField, spl []uint8) error {
	if cert.Subject.CommonName != "SEV-VCEK" {
		return fmt.Errorf("the certificate's subject common name is %q, not SEV-VCEK", cert.Subject.CommonName)
	}
	ext, err := snpabi.ParseKDSExtensions(cert.Extensions, "VCEK")
	if err != nil {
		return fmt.Errorf("invalid VCEK: %w", err)
	}
	if ext.Product != product {
		return fmt.Errorf("the certificate's productName extension (1.3.6.1.4.1.3704.1.2) is %q, not %s", ext.ProductName, product)
	}
	if !bytes.Equal(ext.HWID, hwid) {
		return fmt.Errorf("the certificate's hwid extension (1.3.6.1.4.1.3704.1.4) is %x, not the key's %x", ext.HWID, hwid)
	}
	for i, p := range params {
		if ext.SPL[p.SPLArc] != spl[i] {
			return fmt.Errorf("the certificate's %s extension (%s.%d.%d) is not %d",
				p.KDSParameter, snpabi.OIDKDS, snpabi.KDSSPL, p.SPLArc, spl[i])
		}
	}
	return nil
}

func parsePCSKey(parts []string) (*keySpec, error) {
	switch {
	case len(parts) == 4 && (parts[1] == "sgx" || parts[1] == "tdx") && parts[2] == "tcb":
		return parseTCBInfoKey(parts[1], parts[3])
	case len(parts) == 4 && (parts[1] == "sgx" || parts[1] == "tdx") && parts[2] == "qe" && parts[3] == "identity":
		// Intel PCS v4 serves the QE Identity with id QE for SGX and the
		// TD QE Identity with id TD_QE for TDX. Version 1 documents
		// (qeIdentity) have no id and exist for SGX only.
		expectedID := map[string]string{"sgx": "QE", "tdx": "TD_QE"}[parts[1]]
		return &keySpec{
			description:  fmt.Sprintf("the Intel %s QE Identity", strings.ToUpper(parts[1])),
			kind:         KindQEIdentity,
			single:       true,
			checkBody:    func(s *Set) error { return checkDocumentID(s.Items[0].Raw, expectedID, parts[1] == "sgx") },
			chainHeaders: []string{"SGX-Enclave-Identity-Issuer-Chain"},
		}, nil
	case len(parts) == 3 && parts[1] == "pckcrl" && (parts[2] == "processor" || parts[2] == "platform"):
		// Intel names the issuers "Intel SGX PCK Processor CA" and "Intel
		// SGX PCK Platform CA".
		caSuffix := "PCK " + strings.ToUpper(parts[2][:1]) + parts[2][1:] + " CA"
		return &keySpec{
			description: "the Intel PCK CRL of the " + parts[2] + " CA",
			kind:        KindCRL,
			single:      true,
			checkBody: func(s *Set) error {
				if cn := s.Items[0].CRL.Issuer.CommonName; !strings.HasSuffix(cn, caSuffix) {
					return fmt.Errorf("the CRL's issuer common name is %q, not one that ends in %q", cn, caSuffix)
				}
				return nil
			},
			chainHeaders: []string{"SGX-PCK-CRL-Issuer-Chain"},
		}, nil
	case len(parts) == 2 && parts[1] == "rootcacrl":
		return &keySpec{description: "the Intel SGX Root CA CRL", kind: KindCRL, single: true}, nil
	}
	return nil, errUnknownKey
}

func parseTCBInfoKey(platform, fmspc string) (*keySpec, error) {
	if err := CheckFMSPC(fmspc); err != nil || fmspc != strings.ToUpper(fmspc) {
		return nil, fmt.Errorf("the FMSPC %q of the key is not 12 upper-case hexadecimal digits", fmspc)
	}
	expectedID := map[string]string{"sgx": "SGX", "tdx": "TDX"}[platform]
	return &keySpec{
		description: fmt.Sprintf("the Intel %s TCB Info for FMSPC %s", strings.ToUpper(platform), fmspc),
		kind:        KindTCBInfo,
		single:      true,
		checkBody: func(s *Set) error {
			// Version 2 TCB Info has no id and exists for SGX only.
			if err := checkDocumentID(s.Items[0].Raw, expectedID, platform == "sgx"); err != nil {
				return err
			}
			var doc struct {
				TCBInfo struct {
					FMSPC string `json:"fmspc"`
				} `json:"tcbInfo"`
			}
			if err := json.Unmarshal(s.Items[0].Raw, &doc); err != nil {
				return fmt.Errorf("invalid TCB Info: %w", err)
			}
			if !strings.EqualFold(doc.TCBInfo.FMSPC, fmspc) {
				return fmt.Errorf("the TCB Info's fmspc is %q, not the key's %s", doc.TCBInfo.FMSPC, fmspc)
			}
			return nil
		},
		chainHeaders: []string{"TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"},
	}, nil
}

// checkDocumentID checks the id of a TCB Info or QE Identity document. A
// document without id passes only when noIDAllowed is set.
func checkDocumentID(raw []byte, expectedID string, noIDAllowed bool) error {
	body, err := signedObject(raw)
	if err != nil {
		return err
	}
	var v struct {
		ID *string `json:"id"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("invalid signed object: %w", err)
	}
	switch {
	case v.ID == nil && noIDAllowed:
		return nil
	case v.ID == nil:
		return fmt.Errorf("the document has no id, and %s is expected", expectedID)
	case *v.ID != expectedID:
		return fmt.Errorf("the document's id is %q, not %s", *v.ID, expectedID)
	}
	return nil
}

func parseOCSPKey(parts []string) (*keySpec, error) {
	if len(parts) != 3 {
		return nil, errUnknownKey
	}
	if b, err := hex.DecodeString(parts[1]); err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("the issuer key hash %q of the key is not %d bytes in hexadecimal", parts[1], sha256.Size)
	}
	serial, ok := new(big.Int).SetString(parts[2], 16)
	if !ok {
		return nil, fmt.Errorf("the serial number %q of the key is not hexadecimal", parts[2])
	}
	return &keySpec{
		description: "the OCSP response for serial number " + parts[2],
		kind:        KindOCSP,
		single:      true,
		checkBody: func(s *Set) error {
			singles, err := ParseOCSPResponse(s.Items[0].Raw)
			if err != nil {
				return err
			}
			var serials []string
			for _, single := range singles {
				if single.CertID.SerialNumber != nil && single.CertID.SerialNumber.Cmp(serial) == 0 {
					return nil
				}
				serials = append(serials, single.CertID.SerialNumber.Text(16))
			}
			return fmt.Errorf("the OCSP response is about serial numbers %s only", strings.Join(serials, ", "))
		},
	}, nil
}

// describeBody names the kinds of the items of s for a message, such as
// "a CRL" or "an X.509 certificate and a CRL".
func describeBody(s *Set) string {
	var names []string
	for _, it := range s.Items {
		name := kindNames[it.Kind]
		if it.Kind == KindTCBInfo || it.Kind == KindQEIdentity {
			if body, err := signedObject(it.Raw); err == nil {
				var v struct {
					ID string `json:"id"`
				}
				if json.Unmarshal(body, &v) == nil && v.ID != "" {
					name += " with id " + v.ID
				}
			}
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return strings.Join(names, " and ")
}

// signedObject returns the signed object of an Intel PCS body: the exact
// bytes of its tcbInfo, enclaveIdentity or qeIdentity member.
func signedObject(raw []byte) ([]byte, error) {
	return pcsdoc.SignedObject(raw, "tcbInfo", "enclaveIdentity", "qeIdentity")
}

// checkSignedBy checks that cert signed the single item of s: a CRL, or an
// Intel PCS document whose signature is the hexadecimal r||s of an ECDSA
// P-256 signature over the SHA-256 of its signed object.
func checkSignedBy(s *Set, cert *x509.Certificate) error {
	it := s.Items[0]
	var members []string
	switch it.Kind {
	case KindCRL:
		return it.CRL.CheckSignatureFrom(cert)
	case KindTCBInfo:
		members = []string{"tcbInfo"}
	case KindQEIdentity:
		members = []string{"enclaveIdentity", "qeIdentity"}
	default:
		return fmt.Errorf("%s has no signature that an issuer chain verifies", kindNames[it.Kind])
	}

	doc, err := pcsdoc.Split(it.Raw, members...)
	if err != nil {
		return err
	}
	key, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("the certificate %q has no ECDSA key", cert.Subject.CommonName)
	}
	if !pcsdoc.VerifyRawECDSA(key, doc.Body, doc.Signature) {
		return fmt.Errorf("the signature does not verify under the key of %q", cert.Subject.CommonName)
	}
	return nil
}
