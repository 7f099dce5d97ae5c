package attest

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/cloister-dev/cloister/collateral"
)

// Evidence is attestation evidence as produced by a TEE.
type Evidence struct {
	// Format names the verifier that understands Data ("snp", "dcap", ...).
	// It may be empty for bytes whose format is not yet detected.
	Format string `json:"format,omitempty"`
	// Data is the evidence itself: a report, quote, document or token.
	Data []byte `json:"data"`
	// Aux holds auxiliary data delivered with the evidence, such as the
	// SEV-SNP certificate table of configfs-tsm's auxblob.
	Aux []byte `json:"aux,omitempty"`
}

// Options are the inputs of one verification besides the evidence. The zero
// value verifies at the current time against the embedded vendor roots with
// no collateral, which rejects whatever needs collateral.
type Options struct {
	// At is the verification time; zero means now.
	At time.Time
	// Collateral supplies certificates, CRLs and vendor documents. Its
	// self-signed certificates, public keys and JWKS documents are the
	// caller's trust anchors, except emulated development roots, which
	// count only in TrustAnchors.
	Collateral collateral.Source
	// TrustAnchors holds roots and keys that the caller passed explicitly
	// as trust anchors. Development roots of emulated TEEs are accepted
	// only from here.
	TrustAnchors *collateral.Set
	// Nonce, when set, is the freshness value the evidence must carry.
	Nonce []byte
	// Audience, when set, must be among the audiences of evidence that
	// names its intended recipients, such as a token's aud claim.
	Audience string
	// MaxAge is the oldest accepted evidence, measured from an attested
	// issuance time to Time(), for formats that carry one (RA-TLS
	// certificates of the cloister-v1 binding). Zero means the format's
	// default; other formats ignore it.
	MaxAge time.Duration
}

// Time returns the verification time, defaulting to now.
func (o Options) Time() time.Time {
	if o.At.IsZero() {
		return time.Now()
	}
	return o.At
}

// CollateralFor queries the collateral source for q, returning an empty
// set when there is no source. Items scoped to other TEEs than q.TEE are
// left out.
func (o Options) CollateralFor(ctx context.Context, q collateral.Query) (*collateral.Set, error) {
	if o.Collateral == nil {
		return &collateral.Set{}, nil
	}
	set, err := o.Collateral.Collateral(ctx, q)
	if err != nil {
		return nil, err
	}
	return set.ForTEE(q.TEE), nil
}

// Anchors returns the trust anchors that serve evidence of type tee: those
// in TrustAnchors that are not scoped to other TEEs.
func (o Options) Anchors(tee string) *collateral.Set {
	return o.TrustAnchors.ForTEE(tee)
}

// Verifier verifies one format of evidence. Implementations must be safe
// for concurrent use and must not panic on any input; their fuzz and
// prefix tests check that, and Verify and Detect in this package also turn
// a panic into a rejection.
type Verifier interface {
	// Name is the format name, also used on the command line ("snp").
	Name() string
	// Detect reports whether data looks like this format. It is cheap
	// and does not verify anything.
	Detect(data []byte) bool
	// Verify checks the evidence's signatures, certificate chain and
	// collateral at opts.Time() and returns the proven claims. It does
	// not appraise them: debug, TCB status and reference values are the
	// appraiser's decision. On a failure after the signature and chain
	// verified, it returns the claims proven so far together with the
	// error; otherwise it returns nil claims.
	Verify(ctx context.Context, ev Evidence, opts Options) (*Claims, error)
}

// Inspector is implemented by verifiers that can decode evidence without
// judging it, for `cloister inspect`.
type Inspector interface {
	// Inspect decodes every field of the evidence into a value that
	// encodes to readable JSON.
	Inspect(data []byte) (any, error)
}

// Attester produces evidence inside a TEE.
type Attester interface {
	// Name is the TEE name, with "emulated-" in front for emulated TEEs.
	Name() string
	// Attest returns evidence that binds reportData. The attester places
	// it in the hardware's report data field, zero-padded to the field's
	// size, and returns an error when it is longer.
	Attest(ctx context.Context, reportData []byte) (*Evidence, error)
}

// EventLogger is implemented by attesters whose TEE keeps an event log
// that the verifier replays against the evidence, such as the CC event log
// of a TDX guest. Attest leaves the log out of Evidence.Aux, because RA-TLS
// certificates carry Aux as an extension and a log can take tens of KiB.
// A caller that sends the evidence in one request, such as the KBS client,
// calls EventLog and puts the log in Aux itself.
type EventLogger interface {
	// EventLog returns the event log in the form that the verifier of the
	// attester's evidence takes in Evidence.Aux, or nil when the TEE keeps
	// none. An error means that the TEE should have a log but it could not
	// be read. Evidence without the log still verifies, but its event-log
	// check is not-checked, so a policy that requires the log rejects it.
	EventLog(ctx context.Context) ([]byte, error)
}

// EmulatedLabel labels every output that shows a verdict or a decision on
// emulated evidence: CLI verdicts, connection banners and audit reasons.
const EmulatedLabel = "EMULATED TEE: signed by a development root, proves no hardware"

// EmulatedOrganization is the subject organization of every certificate
// that Cloister generates for an emulated TEE. Verifiers use it to label
// such evidence and to refuse development roots found among ordinary
// collateral.
const EmulatedOrganization = "Cloister emulated TEE (development only)"

// IsEmulated reports whether cert was generated for an emulated TEE.
func IsEmulated(cert *x509.Certificate) bool {
	for _, o := range cert.Subject.Organization {
		if o == EmulatedOrganization {
			return true
		}
	}
	return false
}
