package tpm

import (
	"crypto"

	"github.com/cloister-dev/cloister/attest"
)

// Quote is one TPM2_Quote output: the signed TPMS_ATTEST, its signature
// and the PCR values reported beside it.
type Quote struct {
	Message   []byte
	Signature Signature
	PCRs      PCRBank
}

// Check names recorded in Claims.Checks.
const (
	CheckQuoteSignature = "quote-signature"
	CheckPCRDigestName  = "pcr-digest"
	CheckEventLogReplay = "event-log-replay"
	CheckAKCertificate  = "ak-certificate"
	CheckAKBinding      = "ak-binding"
	CheckAKAttributes   = "ak-attributes"
	CheckNonce          = "nonce"
	// CheckSecureBoot is recorded as not checked when the Secure Boot state
	// cannot be read from a replayed event log.
	CheckSecureBoot = "secure-boot"
	// CheckCanonicalEventLog and CheckTEEAttestation are recorded as not
	// checked when a go-tpm-tools attestation carries those parts.
	CheckCanonicalEventLog = "canonical-event-log"
	CheckTEEAttestation    = "tee-attestation"
)

// VerifyQuote checks q's signature under ak, decodes its TPMS_ATTEST and
// compares the reported PCR values with the signed PCR digest. It records
// the quote-signature and pcr-digest checks in c, each labelled with the
// PCR bank, and returns the decoded quote. The caller must have
// established trust in ak.
func VerifyQuote(c *attest.Claims, q Quote, ak crypto.PublicKey) (*Attest, error) {
	bank := hashName(q.PCRs.Hash) + " bank"
	if err := VerifySignature(ak, q.Message, q.Signature); err != nil {
		record(c, CheckQuoteSignature, bank, err)
		return nil, err
	}
	a, err := ParseAttest(q.Message)
	if err != nil {
		record(c, CheckQuoteSignature, bank, err)
		return nil, err
	}
	record(c, CheckQuoteSignature, bank, nil)

	err = CheckPCRDigest(a, q.PCRs, q.Signature.Hash)
	record(c, CheckPCRDigestName, bank, err)
	if err != nil {
		return a, err
	}
	return a, nil
}

// record appends a passed or failed check with detail naming what it
// covered.
func record(c *attest.Claims, name, detail string, err error) {
	ch := attest.Check{Name: name, Result: attest.CheckPassed, Detail: detail}
	if err != nil {
		ch.Result = attest.CheckFailed
		ch.Detail = detail + ": " + err.Error()
	}
	c.Checks = append(c.Checks, ch)
}
