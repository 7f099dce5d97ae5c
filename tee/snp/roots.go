package snp

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"

	"github.com/google/go-sev-guest/verify/trust"
)

// AMD's published ARK, ASK and ASVK certificates for each product, as
// go-sev-guest v0.15.0 embeds them from AMD's KDS cert_chain endpoints. Each
// is pinned by its SHA-256 fingerprint, so that a change in the dependency
// cannot change what this package trusts.
var pinnedAMDCerts = []struct {
	bundle []byte
	role   string // ARK, ASK or ASVK
	cn     string
	sha256 string
}{
	{trust.AskArkMilanVcekBytes, "ARK", "ARK-Milan", "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"},
	{trust.AskArkMilanVcekBytes, "ASK", "SEV-Milan", "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b"},
	{trust.AskArkMilanVlekBytes, "ASVK", "SEV-VLEK-Milan", "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5"},
	{trust.AskArkGenoaVcekBytes, "ARK", "ARK-Genoa", "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1"},
	{trust.AskArkGenoaVcekBytes, "ASK", "SEV-Genoa", "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521"},
	{trust.AskArkGenoaVlekBytes, "ASVK", "SEV-VLEK-Genoa", "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372"},
	{trust.AskArkTurinVcekBytes, "ARK", "ARK-Turin", "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a"},
	{trust.AskArkTurinVcekBytes, "ASK", "SEV-Turin", "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185"},
	{trust.AskArkTurinVlekBytes, "ASVK", "SEV-VLEK-Turin", "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c"},
}

var (
	// embeddedARKs are AMD's root keys for Milan, Genoa and Turin.
	embeddedARKs []*x509.Certificate
	// embeddedIntermediates are AMD's ASKs and ASVKs, used when the
	// collateral lacks them. They are only candidates: each is still
	// verified against the chosen root.
	embeddedIntermediates []*x509.Certificate
)

func init() {
	for _, p := range pinnedAMDCerts {
		cert, err := findPinned(p.bundle, p.sha256)
		if err != nil {
			panic(fmt.Sprintf("snp: embedded AMD %s %s: %v", p.role, p.cn, err))
		}
		if p.role == "ARK" {
			embeddedARKs = append(embeddedARKs, cert)
		} else {
			embeddedIntermediates = append(embeddedIntermediates, cert)
		}
	}
}

// findPinned returns the certificate of a PEM bundle whose SHA-256 is want.
func findPinned(bundle []byte, want string) (*x509.Certificate, error) {
	rest := bundle
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("no certificate with SHA-256 %s in the bundle", want)
		}
		sum := sha256.Sum256(block.Bytes)
		if hex.EncodeToString(sum[:]) != want {
			continue
		}
		return x509.ParseCertificate(block.Bytes)
	}
}

// EmbeddedRoots returns AMD's ARKs for Milan, Genoa and Turin.
func EmbeddedRoots() []*x509.Certificate { return append([]*x509.Certificate(nil), embeddedARKs...) }
