package tpm

import (
	"crypto"
	"crypto/subtle"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-tpm/tpm2"

	"github.com/cloister-dev/cloister/attest"
)

// PCRBank contains the PCR values of one hash algorithm, keyed by PCR index,
// as reported beside a quote. They are not attested until CheckPCRDigest
// has compared them with a signed quote.
type PCRBank struct {
	Hash   crypto.Hash
	Values map[int][]byte
}

// Indexes returns the PCR indexes of the bank in ascending order.
func (b PCRBank) Indexes() []int {
	out := make([]int, 0, len(b.Values))
	for i := range b.Values {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// hashName returns the name the TCG uses for a PCR bank's algorithm.
func hashName(h crypto.Hash) string {
	switch h {
	case crypto.SHA1:
		return "SHA-1"
	case crypto.SHA256:
		return "SHA-256"
	case crypto.SHA384:
		return "SHA-384"
	case crypto.SHA512:
		return "SHA-512"
	}
	return h.String()
}

// bankHash converts the hash algorithm of a PCR selection.
func bankHash(alg tpm2.TPMIAlgHash) (crypto.Hash, error) {
	h, err := alg.Hash()
	if err != nil {
		return 0, attest.Errorf(attest.ErrUnsupported, "TPMS_PCR_SELECTION.hash", "PCR bank algorithm %#04x is not SHA-1, SHA-256, SHA-384 or SHA-512", uint16(alg))
	}
	return h, nil
}

// selectedPCRs lists the PCR indexes of one selection bitmap: bit i of
// byte j selects PCR 8*j+i.
func selectedPCRs(bitmap []byte) []int {
	var out []int
	for j, b := range bitmap {
		for i := 0; i < 8; i++ {
			if b&(1<<i) != 0 {
				out = append(out, 8*j+i)
			}
		}
	}
	return out
}

// CheckPCRDigest recomputes the PCR digest of the quote from the reported
// values and compares it with the signed TPMS_QUOTE_INFO.pcrDigest. The
// reported values must be exactly the selected PCRs of bank's algorithm,
// so that no value is reported that the quote does not cover. The digest
// uses hash, the hash of the signing scheme, as TPM2_Quote does.
func CheckPCRDigest(a *Attest, bank PCRBank, hash crypto.Hash) error {
	var selected []int
	concat := make([]byte, 0, 24*bank.Hash.Size())
	for _, sel := range a.Quote.PCRSelect.PCRSelections {
		h, err := bankHash(sel.Hash)
		if err != nil {
			return err
		}
		indexes := selectedPCRs(sel.PCRSelect)
		if len(indexes) == 0 {
			continue
		}
		if h != bank.Hash {
			return attest.Errorf(attest.ErrBinding, "TPMS_QUOTE_INFO.pcrSelect", "the quote selects PCRs of the %s bank but the reported PCR values are of the %s bank", hashName(h), hashName(bank.Hash)).
				WithFix("report the PCR values of the bank that was quoted")
		}
		for _, i := range indexes {
			v, ok := bank.Values[i]
			if !ok {
				return attest.Errorf(attest.ErrMalformed, "pcrs", "PCR %d is selected in the quote but its value is not reported", i).
					WithFix("report every quoted PCR value with the quote")
			}
			if len(v) != bank.Hash.Size() {
				return attest.Errorf(attest.ErrMalformed, "pcrs", "PCR %d value has %d bytes, not the %d bytes of a %s PCR", i, len(v), bank.Hash.Size(), hashName(bank.Hash))
			}
			concat = append(concat, v...)
			selected = append(selected, i)
		}
	}
	if extra := unselected(bank, selected); len(extra) > 0 {
		return attest.Errorf(attest.ErrBinding, "pcrs", "PCR %s reported but not covered by the quote, so their values are not attested", joinInts(extra)).
			WithFix("report only the PCRs the quote selects")
	}
	if !hash.Available() {
		return attest.Errorf(attest.ErrUnsupported, "TPMS_QUOTE_INFO.pcrDigest", "hash %v is not available", hash)
	}
	h := hash.New()
	h.Write(concat)
	got := h.Sum(nil)
	want := a.Quote.PCRDigest.Buffer
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return attest.Errorf(attest.ErrBinding, "TPMS_QUOTE_INFO.pcrDigest", "the reported %s PCR values do not hash to the PCR digest signed in the quote, so at least one PCR value was changed", hashName(bank.Hash)).
			WithValues(attest.Hex(got).String(), attest.Hex(want).String()).
			WithFix("report the PCR values that were read with the quote, unmodified")
	}
	return nil
}

func unselected(bank PCRBank, selected []int) []int {
	in := map[int]bool{}
	for _, i := range selected {
		in[i] = true
	}
	var out []int
	for _, i := range bank.Indexes() {
		if !in[i] {
			out = append(out, i)
		}
	}
	return out
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
