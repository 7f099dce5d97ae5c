// Package quickstart runs Cloister's first-use walkthroughs on a machine
// without a TEE or a network, printing what each step proved.
//
// Run is the full walkthrough: an attestation service, a data clean room
// in an emulated SEV-SNP TEE that receives its secret through the KBS
// protocol, and two parties that verify it before they upload their
// tables (see cleanroom.go). RunBasic is the short one: it emulates one
// SEV-SNP report, verifies it and appraises it.
//
// Every step runs real code paths (the snp verifier, the appraisal, the
// key broker, RA-TLS) on evidence in the real SEV-SNP report format. The
// evidence is signed by a development root generated for the run, so it
// is labelled EMULATED throughout and proves no hardware.
package quickstart

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/tee/snp"
)

// Step is one step of the walkthrough.
type Step struct {
	// Title is a short description of the step.
	Title string
	// Run performs the step and returns what it proved, one line per fact.
	Run func(ctx context.Context, s *State) ([]string, error)
}

// State is the data the steps pass on to later steps.
type State struct {
	// Key is the workload key whose SHA-256 the evidence binds.
	Key *ecdsa.PrivateKey
	// KeyHash is the SHA-256 of Key's SubjectPublicKeyInfo.
	KeyHash []byte
	// Emulator is the emulated SEV-SNP guest.
	Emulator *snp.Emulator
	// Evidence is the emulated guest's report.
	Evidence *attest.Evidence
	// VerifyOptions trust the emulator's development root.
	VerifyOptions attest.Options
	// Claims are the verified claims of Evidence.
	Claims *attest.Claims
}

// Steps returns the basic walkthrough's steps in order.
func Steps() []Step {
	return []Step{
		{"Generate a workload key", stepKey},
		{"Emulate an SEV-SNP guest that binds the key's hash", stepEmulate},
		{"Verify the report against the development root", stepVerify},
		{"Appraise with the default policy", stepDefaultAppraisal},
		{"Appraise with --allow-emulated", stepAllowEmulated},
		{"Appraise a debug guest", stepDebugGuest},
	}
}

// RunBasic runs every step of the basic walkthrough, printing each
// outcome to w. It returns an error naming the first step that failed,
// after which no further step runs.
func RunBasic(ctx context.Context, w io.Writer) error {
	fmt.Fprintln(w, "Cloister quickstart: EMULATED SEV-SNP guest (development root, proves no hardware)")
	fmt.Fprintln(w)
	s := &State{}
	for i, step := range Steps() {
		if err := runStep(w, i+1, step.Title, func() ([]string, error) { return step.Run(ctx, s) }); err != nil {
			return err
		}
	}
	fmt.Fprint(w, nextSteps)
	return nil
}

// runStep prints a step's title, runs it and prints what it proved, then
// "ok" or the failure. The error names the step.
func runStep(w io.Writer, number int, title string, run func() ([]string, error)) error {
	fmt.Fprintf(w, "%d. %s\n", number, title)
	proven, err := run()
	for _, line := range proven {
		fmt.Fprintf(w, "   %s\n", line)
	}
	if err != nil {
		fmt.Fprintf(w, "   FAILED: %v\n", err)
		return fmt.Errorf("quickstart step %d (%s) failed: %w", number, title, err)
	}
	fmt.Fprintln(w, "   ok")
	return nil
}

const nextSteps = `
What this proved: Cloister verifies an SEV-SNP report signature and chain,
binds a key to the report data, rejects emulated evidence unless told
otherwise, and rejects a debug guest. It proved nothing about hardware: the
EMULATED guest is signed by a development root created for this run.

Next:
  cloister emulate snp --report-data HEX --out DIR   write an emulated report and its chain
  cloister verify --collateral DIR --at TIME FILE    verify real evidence offline
  cloister inspect FILE                              print every field, unverified
`

func stepKey(_ context.Context, s *State) ([]string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(spki)
	s.Key, s.KeyHash = key, sum[:]
	return []string{fmt.Sprintf("ECDSA P-256 key, SHA-256 of its public key: %x", s.KeyHash)}, nil
}

func stepEmulate(ctx context.Context, s *State) ([]string, error) {
	e, err := snp.NewEmulator(snp.EmulatorOptions{})
	if err != nil {
		return nil, err
	}
	ev, err := e.Attest(ctx, s.KeyHash)
	if err != nil {
		return nil, err
	}
	s.Emulator, s.Evidence = e, ev
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "development root", Raw: e.Root().Raw, Certificate: e.Root()})
	s.VerifyOptions = attest.Options{Collateral: e.Collateral(), TrustAnchors: anchors}
	return []string{
		fmt.Sprintf("EMULATED %d-byte SEV-SNP report, REPORT_DATA = key hash, zero-padded", len(ev.Data)),
		fmt.Sprintf("development root: %s", e.Root().Subject.CommonName+", O="+attest.EmulatedOrganization),
	}, nil
}

func stepVerify(ctx context.Context, s *State) ([]string, error) {
	claims, err := attest.Verify(ctx, *s.Evidence, s.VerifyOptions)
	if err != nil {
		return nil, err
	}
	s.Claims = claims
	if !claims.Emulated || claims.TrustAnchor.Kind != attest.AnchorEmulatedRoot {
		return nil, errors.New("the verifier did not label the evidence as emulated")
	}
	want := make([]byte, 64)
	copy(want, s.KeyHash)
	if string(claims.ReportData) != string(want) {
		return nil, fmt.Errorf("report data %s does not bind the key hash %x", claims.ReportData, s.KeyHash)
	}
	var passed []string
	for _, c := range claims.Checks {
		if c.Result == attest.CheckPassed {
			passed = append(passed, c.Name)
		}
	}
	return []string{
		"checks passed: " + strings.Join(passed, ", "),
		fmt.Sprintf("trust anchor: %s (EMULATED)", claims.TrustAnchor.Kind),
		"report data binds the key: " + claims.ReportData[:32].String() + " (then 32 zero bytes)",
		fmt.Sprintf("measurement: %s", claims.Measurement),
	}, nil
}

func stepDefaultAppraisal(ctx context.Context, s *State) ([]string, error) {
	res := appraise.Evaluate(ctx, *s.Evidence, s.VerifyOptions, appraise.Options{ReportData: s.KeyHash})
	if res.Verdict != appraise.Reject || !hasRule(res.Reasons, "emulated") {
		return nil, fmt.Errorf("default appraisal returned %s, expected a rejection of emulated evidence", res.Verdict)
	}
	return []string{"rejected, as it must be: " + res.Reasons[0].Message}, nil
}

func stepAllowEmulated(ctx context.Context, s *State) ([]string, error) {
	res := appraise.Evaluate(ctx, *s.Evidence, s.VerifyOptions, appraise.Options{AllowEmulated: true, ReportData: s.KeyHash})
	if res.Verdict != appraise.Accept {
		return nil, fmt.Errorf("appraisal with emulated evidence allowed returned %s: %v", res.Verdict, res.Error)
	}
	return []string{"accepted (EMULATED): signature, chain and key binding hold, no debug"}, nil
}

func stepDebugGuest(ctx context.Context, s *State) ([]string, error) {
	e, err := snp.NewEmulator(snp.EmulatorOptions{Debug: true})
	if err != nil {
		return nil, err
	}
	ev, err := e.Attest(ctx, s.KeyHash)
	if err != nil {
		return nil, err
	}
	anchors := &collateral.Set{}
	anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "development root", Raw: e.Root().Raw, Certificate: e.Root()})
	opts := attest.Options{Collateral: e.Collateral(), TrustAnchors: anchors}
	res := appraise.Evaluate(ctx, *ev, opts, appraise.Options{AllowEmulated: true, ReportData: s.KeyHash})
	if res.Verdict != appraise.Reject || !hasRule(res.Reasons, "debug") {
		return nil, fmt.Errorf("appraisal of a debug guest returned %s, expected a rejection for debug", res.Verdict)
	}
	return []string{"EMULATED guest with policy DEBUG set: rejected even with --allow-emulated, because the host can read its memory"}, nil
}

func hasRule(reasons []appraise.Reason, rule string) bool {
	for _, r := range reasons {
		if r.Rule == rule {
			return true
		}
	}
	return false
}
