package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/go-tpm-tools/server"
	"github.com/google/go-tpm/tpm2"

	"github.com/cloister-dev/cloister/attest"
)

func init() { attest.Register(Verifier{}) }

// Verifier verifies TPM 2.0 quotes. Its zero value is ready to use.
type Verifier struct{}

// Name returns "tpm".
func (Verifier) Name() string { return string(attest.TEETPM) }

// Detect reports whether data is a go-tpm-tools Attestation protobuf or
// Trustee TPM evidence JSON.
func (Verifier) Detect(data []byte) bool { return detectTrustee(data) || detectAttestation(data) }

// referenceFirmwareV2 is FIRMWARE_V2 as the TCG reference implementation
// defines it (VendorString.h). The Microsoft simulator and libtpms, the
// engine of swtpm, keep it, while hardware and cloud vTPMs set their own,
// so the low 32 bits of firmwareVersion tell a software TPM apart.
//
// NOTE: this is a heuristic for labelling only. A hardware vendor could
// ship the reference value, and a software TPM could change it. A TPM also
// obfuscates firmwareVersion in quotes by keys outside the endorsement and
// platform hierarchies, so an AK in the owner hierarchy is never labelled.
const referenceFirmwareV2 = 0x00163636

// IsSoftwareTPM reports whether a quote's firmware version is the TCG
// reference implementation's, as software TPMs report it.
func IsSoftwareTPM(firmwareVersion uint64) bool {
	return uint32(firmwareVersion) == referenceFirmwareV2
}

// Verify checks every quote of the evidence under a trusted AK, the PCR
// digests, the nonce and the event log, and returns the claims. Claims
// are returned with an error only when the AK and every quote signature
// verified.
func (Verifier) Verify(ctx context.Context, evidence attest.Evidence, opts attest.Options) (*attest.Claims, error) {
	ev, err := ParseEvidence(evidence.Data)
	if err != nil {
		return nil, err
	}
	c := &attest.Claims{TEE: attest.TEETPM, SigningKey: "AK", VerifiedAt: opts.Time()}

	ak, err := establishAK(ctx, ev, opts, c)
	if err != nil {
		return nil, err
	}
	c.TrustAnchor = ak.anchor
	c.Chain = chainInfo(ak.chain)

	var atts []*Attest
	var pcrErr error
	for _, q := range ev.Quotes {
		a, err := VerifyQuote(c, q, ak.key)
		if a == nil {
			return nil, err
		}
		atts = append(atts, a)
		if err != nil && pcrErr == nil {
			pcrErr = err
		}
	}

	if err := setNonce(c, atts); err != nil {
		return nil, err
	}
	checkAKAttributes(c, ev, atts[0])
	setAttributes(c, ev, atts[0], ak)
	if ak.pinned && IsSoftwareTPM(atts[0].Body.FirmwareVersion) {
		c.TrustAnchor.TestKey = true
		c.Warnings = append(c.Warnings, "the quote comes from a software TPM (firmware version of the TCG reference implementation), so it proves no hardware")
	}
	if pcrErr != nil {
		return c, pcrErr
	}
	setMeasurements(c, ev.Quotes)

	if err := replayAll(c, ev); err != nil {
		return c, err
	}
	recordUnverifiedParts(c, ev)
	if err := VerifyNonce(c, opts.Nonce); err != nil {
		return c, err
	}
	return c, nil
}

// checkAKAttributes records whether the AK public area describes a
// restricted signing key created inside the TPM. Only such a key refuses
// to sign external data that starts with TPM_GENERATED_VALUE, which is
// what makes a quote unforgeable. The certificate or the pinning already
// vouches for the key, so the check adds a reason, not a requirement.
// The public area itself is not signed: its attributes count only when
// the quote's qualifiedSigner is its qualified name.
func checkAKAttributes(c *attest.Claims, ev *Evidence, quote *Attest) {
	if ev.AKPublic == nil {
		c.Skip(CheckAKAttributes, false, "the evidence carries the AK as a SubjectPublicKeyInfo, which has no TPM object attributes")
		return
	}
	if !signedByPrimary(ev.AKPublic, quote.Body.QualifiedSigner.Buffer) {
		c.Skip(CheckAKAttributes, false, "the quote's qualifiedSigner is not the qualified name of the AK public area as a primary key, so the area's object attributes are not attested")
		return
	}
	a := ev.AKPublic.ObjectAttributes
	if a.Restricted && a.SignEncrypt && a.FixedTPM && !a.Decrypt {
		c.Pass(CheckAKAttributes)
		return
	}
	c.Warnings = append(c.Warnings, "the AK public area is not a restricted, fixedTPM signing key")
	c.Fail(CheckAKAttributes, fmt.Sprintf("objectAttributes restricted=%t sign=%t fixedTPM=%t decrypt=%t", a.Restricted, a.SignEncrypt, a.FixedTPM, a.Decrypt))
}

// signedByPrimary reports whether qualifiedSigner is the qualified name of
// pub as a primary key of the owner, endorsement, platform or null
// hierarchy: nameAlg followed by H(hierarchy handle || Name), as the TPM 2.0
// specification (Part 1, "Qualified Name") defines it. A key lower in a
// hierarchy has a qualified name that depends on its parents, which the
// evidence does not carry, so it is not recognized.
func signedByPrimary(pub *tpm2.TPMTPublic, qualifiedSigner []byte) bool {
	name, err := tpm2.ObjectName(pub)
	if err != nil {
		return false
	}
	hash, err := pub.NameAlg.Hash()
	if err != nil || !hash.Available() {
		return false
	}
	for _, hierarchy := range []tpm2.TPMHandle{tpm2.TPMRHOwner, tpm2.TPMRHEndorsement, tpm2.TPMRHPlatform, tpm2.TPMRHNull} {
		var handle [4]byte
		binary.BigEndian.PutUint32(handle[:], uint32(hierarchy))
		h := hash.New()
		h.Write(handle[:])
		h.Write(name.Buffer)
		qualified := binary.BigEndian.AppendUint16(nil, uint16(pub.NameAlg))
		qualified = append(qualified, h.Sum(nil)...)
		if bytes.Equal(qualified, qualifiedSigner) {
			return true
		}
	}
	return false
}

// setNonce stores extraData as the claims' nonce. Every quote of one
// attestation is made with the same qualifying data, so a difference means
// the quotes were assembled from several requests.
func setNonce(c *attest.Claims, atts []*Attest) error {
	nonce := atts[0].Nonce()
	for i, a := range atts[1:] {
		if !bytes.Equal(a.Nonce(), nonce) {
			return attest.Errorf(attest.ErrBinding, "TPMS_ATTEST.extraData", "quote %d carries another nonce than quote 0", i+1).
				WithValues(attest.Hex(a.Nonce()).String(), attest.Hex(nonce).String()).
				WithFix("send the quotes of a single attestation request")
		}
	}
	c.Nonce = append(attest.Hex{}, nonce...)
	return nil
}

// VerifyNonce compares the quoted nonce in c.Nonce with the caller's
// expected nonce, when given, and records the nonce check.
func VerifyNonce(c *attest.Claims, want []byte) error {
	if want == nil {
		c.Skip(CheckNonce, false, "no expected nonce was given; the quoted nonce is reported in the claims")
		return nil
	}
	if subtle.ConstantTimeCompare(c.Nonce, want) != 1 {
		c.Fail(CheckNonce, "extraData differs from the expected nonce")
		return attest.Errorf(attest.ErrBinding, "TPMS_ATTEST.extraData", "the TPM quote nonce differs from the expected nonce, so the quote may be replayed").
			WithValues(c.Nonce.String(), attest.Hex(want).String()).
			WithFix("request a new quote with the expected nonce")
	}
	c.Pass(CheckNonce)
	return nil
}

// setMeasurements names the SHA-256 PCR values pcr0, pcr1 and so on. Other
// banks go to the attributes as pcrs_sha1, pcrs_sha384, ...
func setMeasurements(c *attest.Claims, quotes []Quote) {
	for _, q := range quotes {
		if q.PCRs.Hash == crypto.SHA256 {
			for _, i := range q.PCRs.Indexes() {
				c.SetMeasurement("pcr"+strconv.Itoa(i), q.PCRs.Values[i])
			}
			continue
		}
		other := map[string]attest.Hex{}
		for _, i := range q.PCRs.Indexes() {
			other["pcr"+strconv.Itoa(i)] = q.PCRs.Values[i]
		}
		c.SetAttribute("pcrs_"+bankKey(q.PCRs.Hash), other)
	}
}

func bankKey(h crypto.Hash) string {
	switch h {
	case crypto.SHA1:
		return "sha1"
	case crypto.SHA384:
		return "sha384"
	case crypto.SHA512:
		return "sha512"
	}
	return "sha256"
}

// setAttributes records the quote's firmware version, clock and signer
// and, for a certified AK, the GCE instance the certificate names.
func setAttributes(c *attest.Claims, ev *Evidence, a *Attest, ak *trustedAK) {
	b := a.Body
	c.SetAttribute("evidence_form", ev.Form)
	c.SetAttribute("firmware_version", fmt.Sprintf("%#016x", b.FirmwareVersion))
	c.SetAttribute("clock_info", map[string]any{
		"clock":         b.ClockInfo.Clock,
		"reset_count":   b.ClockInfo.ResetCount,
		"restart_count": b.ClockInfo.RestartCount,
		"safe":          bool(b.ClockInfo.Safe),
	})
	c.SetAttribute("qualified_signer", attest.Hex(b.QualifiedSigner.Buffer).String())
	c.SetAttribute("quotes", len(ev.Quotes))
	c.SetAttribute("software_tpm", IsSoftwareTPM(b.FirmwareVersion))
	if ak.cert != nil {
		if info, err := server.GetGCEInstanceInfo(ak.cert); err == nil && info != nil {
			c.SetAttribute("gce_instance", map[string]any{
				"zone":           info.GetZone(),
				"project_id":     info.GetProjectId(),
				"project_number": info.GetProjectNumber(),
				"instance_name":  info.GetInstanceName(),
				"instance_id":    info.GetInstanceId(),
			})
		}
	}
}

// replayAll replays the event log against the PCRs of every quote whose
// bank the log has digests for. At least one bank must replay when a log
// is present.
func replayAll(c *attest.Claims, ev *Evidence) error {
	if len(ev.EventLog) == 0 {
		c.Skip(CheckEventLogReplay, false, "the evidence carries no event log, so only the PCR values themselves are attested")
		return nil
	}
	var summaries []*EventLogSummary
	for _, q := range ev.Quotes {
		bank := hashName(q.PCRs.Hash) + " bank"
		// Every bank replays the same events, so the platform facts are
		// read from the first bank that replays.
		s, err := replayEventLog(ev.EventLog, q.PCRs, len(summaries) == 0)
		switch {
		case errors.Is(err, errBankNotInLog):
			c.Skip(CheckEventLogReplay, false, bank+": "+err.Error())
			continue
		case err != nil:
			record(c, CheckEventLogReplay, bank, err)
			return err
		}
		record(c, CheckEventLogReplay, bank, nil)
		summaries = append(summaries, s)
	}
	if len(summaries) == 0 {
		c.Skip(CheckEventLogReplay, true, "the event log has digests of none of the quoted PCR banks")
		return nil
	}
	if msg := summaries[0].SecureBootError; msg != "" {
		c.Skip(CheckSecureBoot, false, "the Secure Boot state was not read from the replayed event log: "+msg)
		c.Warnings = append(c.Warnings, "the Secure Boot state was not read from the event log: "+msg)
	}
	c.SetAttribute("event_log", summaries)
	return nil
}

// recordUnverifiedParts records the parts of a go-tpm-tools attestation
// that this verifier carries but does not check, so that no reader takes
// them for verified.
func recordUnverifiedParts(c *attest.Claims, ev *Evidence) {
	if len(ev.CanonicalEventLog) > 0 {
		c.Skip(CheckCanonicalEventLog, false, "the canonical event log is not replayed, so its events are not attested, although the PCR values are")
	}
	if ev.TEEAttestation != "" {
		c.Skip(CheckTEEAttestation, false, "the embedded "+ev.TEEAttestation+" attestation is not verified; verify it with the "+teeVerifier(ev.TEEAttestation)+" verifier")
	}
}

func teeVerifier(tee string) string {
	if tee == "TDX" {
		return "dcap"
	}
	return "snp"
}
