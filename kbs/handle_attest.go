package kbs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/ear"
	"github.com/cloister-dev/cloister/internal/jsonvalue"
	"github.com/cloister-dev/cloister/internal/printable"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/tee/azurevtpm"
)

// attestFailedDetail is Trustee's detail for every /attest failure; the
// cause goes to the log and the audit record, not to the client.
const attestFailedDetail = "Attestation error: RCAR handshake Attest failed"

// handleAttest verifies an Attestation for the session in the cookie and
// responds with an EAR token. The processing order is Trustee's: session,
// already attested, nonce, evidence and binding, appraisal, token.
func (s *Server) handleAttest(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	start := s.now()
	tee := "unknown"
	// evidenceDigest is set once the primary evidence has been decoded,
	// so that a rejection of that evidence names it in the audit log.
	evidenceDigest := ""
	// devices is the audit Devices text. It is set when a device is
	// rejected, or once every device has been appraised, so that a later
	// rejection, such as a failed commit, also lists the devices.
	devices := ""
	// reject logs err, audits it for a known session and sends status with
	// detail.
	reject := func(sessionID string, err error, status int, detail string) {
		level := slog.LevelInfo
		if errors.Is(err, ErrPolicyEvaluation) {
			level = slog.LevelError
		}
		attrs := []any{"request_id", requestID(r), "session", sessionRef(sessionID), "tee", tee, "error", err}
		if devices != "" {
			attrs = append(attrs, "devices", devices)
		}
		s.logger().Log(ctx, level, "kbs attest rejected", attrs...)
		s.observeAttestation(tee, "error", start)
		if sessionID != "" {
			s.auditGrouped(ctx, store.AuditRecord{Action: store.AuditDeny, Requester: sessionRef(sessionID),
				TEE: tee, EvidenceDigest: evidenceDigest, Verdict: "rejected", Reason: err.Error(), RequestID: requestID(r),
				Devices: devices})
		}
		p := NewProblem(ProblemAttestationError, detail)
		p.Status = status
		p.Write(w)
	}
	fail := func(sessionID string, err error) {
		reject(sessionID, err, http.StatusUnauthorized, attestFailedDetail)
	}

	cookie, err := r.Cookie(SessionCookie)
	if err != nil {
		fail("", errors.New("no kbs-session-id cookie"))
		return
	}
	sess, cached, err := s.session(ctx, cookie.Value)
	if err != nil {
		fail("", fmt.Errorf("%s: %w", sessionRef(cookie.Value), withoutSessionID(err)))
		return
	}
	tee = sess.TEE
	if sess.State == store.SessionAttested {
		setSessionCookie(w, sess.ID, sess.Expires)
		writeJSON(w, AttestationToken{Token: sess.Token})
		return
	}

	body, release, err := s.readBody(w, r, s.maxBody())
	var tooLarge *bodyTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		// Trustee (actix-web 4) rejects a body over its limit with 413, and
		// the detail names the limit, as /auth's does.
		reject(sess.ID, err, http.StatusRequestEntityTooLarge, attestFailedDetail+": "+err.Error())
		return
	case err != nil:
		fail(sess.ID, err)
		return
	}
	defer release()
	// att's primary evidence is a sub-slice of body, which readBody
	// allocated for this request. The evidence decoders copy what they keep.
	att, err := ParseAttestation(body)
	if err != nil {
		fail(sess.ID, err)
		return
	}
	if att.RuntimeData.Nonce != sess.Nonce {
		fail(sess.ID, attest.Errorf(attest.ErrBinding, "runtime-data.nonce", "nonce is not the one this session issued").
			WithFix("send the nonce of this session's challenge; each nonce is valid for one session only"))
		return
	}
	if err := checkTEEKey(att.RuntimeData.TEEPubKey); err != nil {
		fail(sess.ID, err)
		return
	}

	result, verdicts, evidenceDigest, err := s.appraiseAll(ctx, sess, att)
	if err != nil {
		var deviceErr *deviceError
		if errors.As(err, &deviceErr) {
			devices = deviceErr.devices
		}
		fail(sess.ID, err)
		return
	}
	primary := verdicts[0]
	evidenceDigest = primary.EvidenceDigest
	devices = auditDevices(result)
	token, err := s.Signer.Sign(result, s.now())
	if err != nil {
		fail(sess.ID, fmt.Errorf("sign EAR token: %w", err))
		return
	}

	status := worstStatus(result)
	reasons := resultReasons(result)
	emulated := anyEmulated(verdicts)
	// The audit record and the log line label emulated evidence, as every
	// other output that shows it does, unless the primary appraisal's
	// "emulated" rule already names it.
	if emulated && !hasReason(result.Submods["cpu0"], "emulated") {
		reasons = strings.TrimSuffix(attest.EmulatedLabel+"; "+reasons, "; ")
	}
	keyJSON, _ := json.Marshal(att.RuntimeData.TEEPubKey)
	claimsSum := sha256.Sum256(verdictClaimsJSON(primary))
	// MarkAttested moves the session from challenged to attested once, on
	// any replica, so the session's nonce is used up here.
	err = s.commit(func(ctx context.Context, tx store.Tx) error {
		if err := tx.MarkAttested(ctx, sess.ID, store.Attestation{Token: token, TEEPublicKey: keyJSON,
			ClaimsDigest: hex.EncodeToString(claimsSum[:])}); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, store.AuditRecord{Action: store.AuditAttest, Requester: sessionRef(sess.ID),
			TEE: sess.TEE, EvidenceDigest: primary.EvidenceDigest, PolicyDigest: primary.PolicyDigest,
			Verdict: string(status), Reason: reasons, RequestID: requestID(r), TokenID: result.ID, Devices: devices})
		return err
	})
	if err != nil {
		s.sessions.drop(sess.ID)
		if cached && errors.Is(err, store.ErrConflict) && s.attestedElsewhere(w, r, sess.ID, keyJSON) {
			return
		}
		fail(sess.ID, fmt.Errorf("record attestation: %w", err))
		return
	}
	s.sessions.attested(sess.ID, token, s.now())

	attrs := []any{"request_id", requestID(r), "session", sessionRef(sess.ID), "tee", sess.TEE,
		"emulated", emulated, "status", status, "token_id", result.ID, "reasons", reasons}
	if devices != "" {
		attrs = append(attrs, "devices", devices)
	}
	// Verifier warnings, such as a collateral file skipped as unusable,
	// name problems that the operator must fix before they reject evidence.
	if warnings := verifierWarnings(verdicts); len(warnings) > 0 {
		attrs = append(attrs, "warnings", warnings)
	}
	s.logger().Info("kbs attest", attrs...)
	s.observeAttestation(sess.TEE, string(status), start)
	setSessionCookie(w, sess.ID, sess.Expires)
	writeJSON(w, AttestationToken{Token: token})
}

// attestedElsewhere responds with the token of session id when the store
// holds it as attested for the TEE key keyJSON. The cached copy of a
// session this replica created does not show an attestation that another
// replica recorded, and a guest that sent the same attestation there first
// gets its token here too. A request with another key, such as the loser of
// two concurrent attestations of one session, is rejected as usual.
func (s *Server) attestedElsewhere(w http.ResponseWriter, r *http.Request, id string, keyJSON []byte) bool {
	sess, err := s.Store.GetSession(r.Context(), id)
	if err != nil || sess.State != store.SessionAttested || !bytes.Equal(sess.TEEPublicKey, keyJSON) {
		return false
	}
	setSessionCookie(w, sess.ID, sess.Expires)
	writeJSON(w, AttestationToken{Token: sess.Token})
	return true
}

// checkTEEKey rejects a tee-pubkey that no JWE could be built for, so that
// a token is never issued for a key the resource endpoint cannot use.
func checkTEEKey(k TEEPubKey) error {
	switch {
	case k.Kty == "EC" && k.Alg == AlgECDHESA256KW:
		_, err := k.ECDHPublicKey()
		return err
	case k.Kty == "RSA" && k.Alg == AlgRSAOAEP256:
		_, err := k.RSAPublicKey()
		return err
	}
	return fmt.Errorf("unsupported tee-pubkey: kty %s with alg %s; use EC with %s or RSA with %s",
		printable.Quote(k.Kty, maxEchoedValue), printable.Quote(k.Alg, maxEchoedValue), AlgECDHESA256KW, AlgRSAOAEP256)
}

// appraiseAll verifies the primary evidence and every device's evidence,
// checks that each binds its runtime-data digest, and builds the EAR claim
// set. The first verdict is the primary one. The hex SHA-256 of the
// primary evidence is returned with an error once that evidence decoded,
// so that the audit record of the rejection names it.
func (s *Server) appraiseAll(ctx context.Context, sess *store.Session, att *Attestation) (*ear.Result, []*Verdict, string, error) {
	key := att.RuntimeData.TEEPubKey
	additional := att.TEEEvidence.AdditionalEvidence
	digest, err := PrimaryDigest(DefaultHash, sess.Nonce, key, additional)
	if err != nil {
		return nil, nil, "", err
	}
	// ParseAttestation validated the whole body, so the evidence is
	// valid JSON.
	ev, err := decodeValidEvidence(sess.TEE, att.TEEEvidence.PrimaryEvidence)
	if err != nil {
		return nil, nil, "", attest.Malformed("tee-evidence.primary_evidence", "cannot decode", err)
	}
	result, verdicts, err := s.appraiseDecoded(ctx, sess, att, ev, digest)
	if err != nil {
		sum := sha256.Sum256(ev.Data)
		return nil, nil, hex.EncodeToString(sum[:]), err
	}
	return result, verdicts, "", nil
}

// appraiseDecoded appraises att once its primary evidence ev decoded. The
// evidence must bind digest, the primary runtime-data digest.
func (s *Server) appraiseDecoded(ctx context.Context, sess *store.Session, att *Attestation, ev attest.Evidence, digest []byte) (*ear.Result, []*Verdict, error) {
	key := att.RuntimeData.TEEPubKey
	additional := att.TEEEvidence.AdditionalEvidence
	v, err := s.appraiseBound(ctx, sess.TEE, ev, digest, primaryRuntimeData)
	if err != nil {
		return nil, nil, err
	}
	if att.InitData != nil {
		if err := checkInitData(sess.TEE, att.InitData, v.Claims); err != nil {
			return nil, nil, err
		}
	}

	runtimeClaims := map[string]any{"tee-pubkey": key, "nonce": sess.Nonce, "additional-evidence": additional}
	result := &ear.Result{Nonce: sess.Nonce, Submods: map[string]*ear.Appraisal{
		"cpu0": submod(sess.TEE, v, runtimeClaims, att.InitData),
	}}
	verdicts := []*Verdict{v}

	devices, err := parseAdditionalEvidence(additional)
	if err != nil {
		return nil, nil, err
	}
	if len(devices) > 0 {
		deviceDigest, err := DeviceDigest(DefaultHash, sess.Nonce, key)
		if err != nil {
			return nil, nil, err
		}
		counts := map[string]int{}
		for _, d := range devices {
			class := deviceClass(d.tee)
			name := fmt.Sprintf("%s%d", class, counts[class])
			counts[class]++
			ev, err := DecodeEvidence(d.tee, d.evidence)
			if err != nil {
				return nil, nil, newDeviceError(result, name, d.tee, nil,
					attest.Malformed("tee-evidence.additional_evidence."+d.tee, "cannot decode", err))
			}
			dv, err := s.appraiseBound(ctx, d.tee, ev, deviceDigest, deviceRuntimeData)
			if err != nil {
				return nil, nil, newDeviceError(result, name, d.tee, ev.Data, fmt.Errorf("device %s: %w", d.tee, err))
			}
			result.Submods[name] = submod(d.tee, dv, map[string]any{"tee-pubkey": key, "nonce": sess.Nonce}, nil)
			verdicts = append(verdicts, dv)
		}
	}
	return result, verdicts, nil
}

// runtimeDataKind names the runtime data whose digest evidence binds.
type runtimeDataKind int

const (
	// primaryRuntimeData is {additional-evidence, nonce, tee-pubkey},
	// which the primary evidence binds.
	primaryRuntimeData runtimeDataKind = iota
	// deviceRuntimeData is {nonce, tee-pubkey}, which each device's
	// evidence in additional_evidence binds.
	deviceRuntimeData
)

// appraiseBound verifies and appraises ev and checks that its report data
// is the digest of the runtime data of kind in the TEE's placement. Azure
// vTPM evidence carries the digest in the vTPM quote and the HCL user data
// rather than in the report data, so azurevtpm.CheckRuntimeDigest checks
// it there.
func (s *Server) appraiseBound(ctx context.Context, tee string, ev attest.Evidence, digest []byte, kind runtimeDataKind) (*Verdict, error) {
	v, err := s.Appraiser.Appraise(ctx, tee, ev)
	if err != nil {
		return nil, err
	}
	if v == nil || v.Claims == nil || v.Decision == nil {
		return nil, fmt.Errorf("appraiser returned no claims for %s evidence", tee)
	}
	if reportType, ok := azureReportType(tee); ok {
		if err := azurevtpm.CheckRuntimeDigest(v.Claims, ev.Data, reportType, digest); err != nil {
			return nil, err
		}
		return v, nil
	}
	want := ReportDataFor(tee, digest)
	got := boundData(tee, v.Claims)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return nil, bindingError(tee, kind, got, want)
	}
	return v, nil
}

// bindingError reports evidence of the KBS tee whose bound value got is
// not want, the digest of the runtime data of kind as ReportDataFor places
// it. The fix names that runtime data and, for nvidia, the SPDM nonce that
// carries it.
func bindingError(tee string, kind runtimeDataKind, got, want []byte) error {
	hash := strings.ToUpper(string(DefaultHash))
	data := "the canonical runtime data {additional-evidence, nonce, tee-pubkey}, with the exact additional_evidence string"
	if kind == deviceRuntimeData {
		data = "the canonical device runtime data {nonce, tee-pubkey}, without additional-evidence"
	}
	field := "report data"
	fix := fmt.Sprintf("put the %s of %s into the report data", hash, data)
	if tee == "nvidia" {
		field = "GET_MEASUREMENTS nonce"
		fix = fmt.Sprintf("request the GPU reports with the first 32 bytes of the %s of %s as the SPDM nonce, as Trustee's NVIDIA attester does", hash, data)
	}
	return attest.Errorf(attest.ErrBinding, field, "%s evidence does not bind this session's runtime data (nonce and TEE key)", tee).
		WithValues(hex.EncodeToString(got), hex.EncodeToString(want)).
		WithFix(fix)
}

// boundData returns the claim in which verified evidence of the KBS tee
// carries the value of ReportDataFor. For nvidia it is the SPDM request
// nonce, because GPU reports have no report data field. The verifier
// returns claims only when every GPU carries that nonce. For every other
// tee it is the report data.
func boundData(tee string, c *attest.Claims) []byte {
	if tee == "nvidia" {
		return c.Nonce
	}
	return c.ReportData
}

// azureReportType returns the HCL report type of an Azure vTPM tee.
func azureReportType(tee string) (uint32, bool) {
	switch tee {
	case "az-snp-vtpm":
		return azurevtpm.ReportTypeSNP, true
	case "az-tdx-vtpm":
		return azurevtpm.ReportTypeTDX, true
	}
	return 0, false
}

// submod builds the EAR appraisal of one verdict.
func submod(tee string, v *Verdict, runtimeClaims map[string]any, initData *InitData) *ear.Appraisal {
	tv := ear.TrustVectorFor(v.Decision.Reasons)
	status := tv.Status()
	if !v.Decision.Accepted && status != ear.StatusContraindicated {
		// A policy that rejected must never yield a usable status, even
		// when its reasons map to milder trust values.
		status = ear.StatusContraindicated
	}
	reportData := hex.EncodeToString(v.Claims.ReportData)
	if tee == "sample" || tee == "sampledevice" {
		reportData = base64.StdEncoding.EncodeToString(v.Claims.ReportData)
	}
	annotated := map[string]any{
		tee:                   tokenClaimsOf(v),
		"report_data":         reportData,
		"runtime_data_claims": runtimeClaims,
	}
	if initData != nil {
		annotated["init_data"] = initDataDigestHex(initData)
	}
	c := v.Claims
	return &ear.Appraisal{
		Status:            status,
		TrustVector:       &tv,
		PolicyID:          v.PolicyID,
		AnnotatedEvidence: annotated,
		KeyClaims: &ear.KeyClaims{TEE: string(c.TEE), Emulated: c.Emulated, Measurement: hex.EncodeToString(c.Measurement),
			ReportData: hex.EncodeToString(c.ReportData), HostData: hex.EncodeToString(c.HostData),
			TCBStatus: c.TCB.Status, Debug: c.Debug},
		Digests: &ear.Digests{Evidence: v.EvidenceDigest, Collateral: v.CollateralDigest, Policy: v.PolicyDigest},
		Reasons: v.Decision.Reasons,
	}
}

// tokenClaims returns the verified claims as the token carries them:
// without the certificate chain and the collateral list, which the
// token's collateral digest identifies and the audit log and
// `cloister verify` show. They made up about a third of a token, and a
// token travels in an Authorization header, whose line nginx and Apache
// httpd limit to 8 KiB by default.
func tokenClaims(c *attest.Claims) *attest.Claims {
	slim := *c
	slim.Chain = nil
	slim.Collateral = nil
	return &slim
}

// tokenClaimsOf returns tokenClaims(v.Claims), as the JSON text of
// v.ClaimsJSON without its chain and collateral members when v has that
// encoding, which is what encoding tokenClaims(v.Claims) gives without a
// second encoding of the claims.
func tokenClaimsOf(v *Verdict) any {
	if v.ClaimsJSON == nil {
		return tokenClaims(v.Claims)
	}
	obj, err := jsonvalue.ParseEncodedObject(v.ClaimsJSON)
	if err != nil {
		return tokenClaims(v.Claims)
	}
	return json.RawMessage(obj.Without("chain", "collateral"))
}

// verdictClaimsJSON returns the JSON encoding of v's claims.
func verdictClaimsJSON(v *Verdict) []byte {
	if v.ClaimsJSON != nil {
		return v.ClaimsJSON
	}
	raw, _ := json.Marshal(v.Claims)
	return raw
}

// deviceClass names the EAR submodule class of a device TEE, as Trustee
// does: gpu for GPUs and the sample device, dcu for Hygon DCUs.
func deviceClass(tee string) string {
	switch tee {
	case "hygondcu":
		return "dcu"
	case "nvidia", "sampledevice":
		return "gpu"
	}
	return tee
}

type deviceEvidence struct {
	tee      string
	evidence json.RawMessage
}

// parseAdditionalEvidence reads the additional_evidence string, a JSON
// object of TEE name to evidence, in name order. The empty string means no
// devices. Any other value that is not an object, "null" included, and a
// TEE name that occurs twice are errors.
func parseAdditionalEvidence(s string) ([]deviceEvidence, error) {
	if s == "" {
		return nil, nil
	}
	const field = "tee-evidence.additional_evidence"
	data := []byte(s)
	if !json.Valid(data) || jsonKind(data) != "object" {
		var m map[string]json.RawMessage
		err := json.Unmarshal(data, &m)
		if err == nil {
			err = fmt.Errorf("the value is %s", jsonKind(data))
		}
		return nil, attest.Malformed(field, "not a JSON object of TEE name to evidence", err).
			WithFix(`send "" when there are no devices, or the JSON text of an object of TEE name to evidence`)
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil, attest.Malformed(field, "not a JSON object of TEE name to evidence", err)
	}
	var out []deviceEvidence
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, attest.Malformed(field, "not a JSON object of TEE name to evidence", err)
		}
		name, _ := tok.(string)
		var ev json.RawMessage
		if err := dec.Decode(&ev); err != nil {
			return nil, attest.Malformed(field, "not a JSON object of TEE name to evidence", err)
		}
		if !knownTEEs[name] {
			return nil, attest.Errorf(attest.ErrUnsupported, field, "unknown device TEE %s", printable.Quote(name, maxEchoedValue))
		}
		if seen[name] {
			return nil, attest.Errorf(attest.ErrMalformed, field, "device TEE %q occurs more than once", name).
				WithFix("send the evidence of all devices of one TEE under its name once")
		}
		seen[name] = true
		out = append(out, deviceEvidence{tee: name, evidence: ev})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].tee < out[j].tee })
	return out, nil
}

// initDataAlgorithm finds the top-level algorithm key of an init-data TOML
// document. NOTE: this reads only that key, not the whole TOML grammar;
// the digest covers the whole text, so nothing else needs parsing here.
var initDataAlgorithm = regexp.MustCompile(`(?m)^\s*algorithm\s*=\s*"([A-Za-z0-9]+)"\s*$`)

func initDataDigest(d *InitData) ([]byte, error) {
	if d.Format != "toml" {
		return nil, attest.Errorf(attest.ErrUnsupported, "init-data.format", "format %s is not supported", printable.Quote(d.Format, maxEchoedValue)).WithFix("send init-data as toml")
	}
	m := initDataAlgorithm.FindStringSubmatch(d.Body)
	if m == nil {
		return nil, attest.Errorf(attest.ErrMalformed, "init-data.algorithm", "the init-data document names no algorithm")
	}
	return HashAlgorithm(strings.ToLower(m[1])).Sum([]byte(d.Body))
}

func initDataDigestHex(d *InitData) string {
	sum, err := initDataDigest(d)
	if err != nil {
		return ""
	}
	return hex.EncodeToString(sum)
}

// checkInitData compares the init-data digest with the launch-time field
// that carries it: SEV-SNP HOST_DATA or TDX MRCONFIGID (Claims.HostData),
// the digest zero-padded or cut to the field's size. Azure vTPM and TPM
// evidence carries it in PCR 8 instead (see checkInitDataPCR8).
func checkInitData(tee string, d *InitData, c *attest.Claims) error {
	sum, err := initDataDigest(d)
	if err != nil {
		return err
	}
	switch tee {
	case "snp", "tdx":
	case "az-snp-vtpm", "az-tdx-vtpm", "tpm":
		return checkInitDataPCR8(sum, c)
	default:
		return attest.Errorf(attest.ErrUnsupported, "init-data", "init data is not supported for %s evidence", tee)
	}
	if len(c.HostData) == 0 {
		return attest.Errorf(attest.ErrBinding, "host data", "the evidence has no host data to bind the init data")
	}
	want := resize(sum, len(c.HostData))
	if subtle.ConstantTimeCompare(c.HostData, want) != 1 {
		return attest.Errorf(attest.ErrBinding, "host data", "host data does not equal the init-data digest").
			WithValues(c.HostData.String(), hex.EncodeToString(want))
	}
	return nil
}

// checkInitDataPCR8 checks the rule for TPM-based evidence: the guest
// extends PCR 8 of the SHA-256 bank once, from zero, with the init-data
// digest, so PCR 8 must equal SHA-256(32 zero bytes || digest). That rule
// needs a SHA-256 digest, so an init-data document with another algorithm
// is rejected.
func checkInitDataPCR8(digest []byte, c *attest.Claims) error {
	if len(digest) != sha256.Size {
		return attest.Errorf(attest.ErrUnsupported, "init-data.algorithm",
			"init data for TPM-based evidence must use sha256, but its digest has %d bytes", len(digest)).
			WithFix("set algorithm = \"sha256\" in the init-data document")
	}
	pcr8, ok := c.Measurements["pcr8"]
	if !ok {
		return attest.Errorf(attest.ErrBinding, "pcr8", "the evidence carries no PCR 8 to bind the init data").
			WithFix("include PCR 8 of the SHA-256 bank in the quote")
	}
	extended := sha256.Sum256(append(make([]byte, sha256.Size), digest...))
	if subtle.ConstantTimeCompare(pcr8, extended[:]) != 1 {
		return attest.Errorf(attest.ErrBinding, "pcr8", "PCR 8 does not equal SHA-256(32 zero bytes || init-data digest)").
			WithValues(pcr8.String(), hex.EncodeToString(extended[:]))
	}
	return nil
}

// worstStatus returns the lowest tier among result's appraisals, so that
// a rejected device makes the whole attestation rejected in the audit
// log, the log line and the metrics.
func worstStatus(result *ear.Result) ear.Status {
	worst := ear.StatusAffirming
	for _, a := range result.Submods {
		if a == nil {
			return ear.StatusContraindicated
		}
		if statusRank(a.Status) > statusRank(worst) {
			worst = a.Status
		}
	}
	return worst
}

// statusRank orders the tiers from affirming (0) to contraindicated (3).
// An unknown tier ranks with contraindicated.
func statusRank(s ear.Status) int {
	switch s {
	case ear.StatusAffirming:
		return 0
	case ear.StatusWarning:
		return 1
	case ear.StatusNone:
		return 2
	}
	return 3
}

// anyEmulated reports whether the claims of any verdict are emulated.
func anyEmulated(verdicts []*Verdict) bool {
	for _, v := range verdicts {
		if v != nil && v.Claims != nil && v.Claims.Emulated {
			return true
		}
	}
	return false
}

// hasReason reports whether a, which may be nil, has a reason from rule.
func hasReason(a *ear.Appraisal, rule string) bool {
	if a == nil {
		return false
	}
	for _, r := range a.Reasons {
		if r.Rule == rule {
			return true
		}
	}
	return false
}

// verifierWarnings returns the verifiers' warnings of every verdict, each
// device's prefixed with its TEE.
func verifierWarnings(verdicts []*Verdict) []string {
	var warnings []string
	for i, v := range verdicts {
		if v == nil || v.Claims == nil {
			continue
		}
		for _, w := range v.Claims.Warnings {
			if i > 0 {
				w = string(v.Claims.TEE) + ": " + w
			}
			warnings = append(warnings, w)
		}
	}
	return warnings
}

// resultReasons returns the reasons of every appraisal in result as "rule:
// message" texts. The primary TEE's come first and without a prefix, and
// each device's reasons are prefixed with its submodule name.
func resultReasons(result *ear.Result) string {
	var b strings.Builder
	cpu := result.Submods["cpu0"]
	if cpu != nil {
		writeReasons(&b, "", cpu)
	}
	if len(result.Submods) > 1 || cpu == nil {
		for _, name := range deviceNames(result) {
			writeReasons(&b, name+": ", result.Submods[name])
		}
	}
	return b.String()
}

// writeReasons appends a's reasons to b as "prefix rule: message" texts,
// each after a "; " unless b is empty.
func writeReasons(b *strings.Builder, prefix string, a *ear.Appraisal) {
	for _, r := range a.Reasons {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(prefix)
		b.WriteString(r.Rule)
		b.WriteString(": ")
		b.WriteString(r.Message)
	}
}

// deviceNames returns the names of result's appraisals other than cpu0 that
// are not nil, in name order.
func deviceNames(result *ear.Result) []string {
	names := make([]string, 0, len(result.Submods))
	for name, a := range result.Submods {
		if a != nil && name != "cpu0" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func (s *Server) observeAttestation(tee, status string, start time.Time) {
	if s.Observer != nil {
		s.Observer.Attestation(tee, status, s.now().Sub(start))
	}
}

// denyAuditTimeout bounds the append of a rejection's audit record.
const denyAuditTimeout = 5 * time.Second

// auditGrouped appends rec, the record of a rejected request, through group
// commit and logs a failure with the request ID. The append has a deadline
// of its own, because a request rejected at its deadline is recorded too.
func (s *Server) auditGrouped(ctx context.Context, rec store.AuditRecord) error {
	rec.Time = s.now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), denyAuditTimeout)
	defer cancel()
	if _, err := s.Store.AppendAuditGrouped(ctx, rec); err != nil {
		s.logger().Error("kbs: audit append failed", "request_id", rec.RequestID, "action", rec.Action, "error", err)
		return err
	}
	return nil
}

// withoutSessionID returns the store's sentinel (ErrNotFound, ErrExpired)
// in place of a store error whose message contains the session ID, which
// must not reach the logs.
func withoutSessionID(err error) error {
	for _, sentinel := range []error{store.ErrNotFound, store.ErrExpired} {
		if errors.Is(err, sentinel) {
			return sentinel
		}
	}
	return errors.New("session lookup failed")
}
