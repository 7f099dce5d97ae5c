package attest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"

	"github.com/cloister-dev/cloister/collateral"
)

// Roots selects the root certificates for a chain verification and labels
// them. The rule, the same for every TEE:
//
//   - Self-signed certificates the caller supplied (in TrustAnchors or in
//     the collateral) for the query's TEE are the roots, and only they: a
//     caller that names its roots must not be overruled by the embedded
//     ones. Certificates scoped to other TEEs (collateral.Item.TEEs) are
//     left out, so they neither anchor this chain nor displace the
//     embedded roots. Emulated
//     development roots found in the collateral are left out; they count
//     only when passed in TrustAnchors. So are certificates that an online
//     source fetched (collateral.Item.Fetched), because an upstream is not
//     a trust anchor.
//   - When the caller supplied none, the embedded vendor roots are used.
//
// Each returned root is labelled vendor-root when it equals an embedded
// root, emulated-root when Cloister generated it, and caller-root otherwise.
func Roots(ctx context.Context, opts Options, q collateral.Query, embedded []*x509.Certificate) ([]*x509.Certificate, error) {
	set, err := opts.CollateralFor(ctx, q)
	if err != nil {
		return nil, err
	}
	var roots []*x509.Certificate
	seen := map[[32]byte]bool{}
	add := func(c *x509.Certificate) {
		sum := sha256.Sum256(c.Raw)
		if !seen[sum] {
			seen[sum] = true
			roots = append(roots, c)
		}
	}
	for _, c := range opts.Anchors(q.TEE).SelfSigned() {
		add(c)
	}
	for _, c := range set.SelfSigned() {
		if !IsEmulated(c) {
			add(c)
		}
	}
	if len(roots) == 0 {
		for _, c := range embedded {
			add(c)
		}
	}
	return roots, nil
}

// DescribeRoot labels root as a trust anchor, comparing it with the embedded
// vendor roots by fingerprint.
func DescribeRoot(root *x509.Certificate, embedded []*x509.Certificate) TrustAnchorRef {
	sum := sha256.Sum256(root.Raw)
	ref := TrustAnchorRef{Kind: AnchorCallerRoot, Name: root.Subject.String(), SHA256: sum[:]}
	switch {
	case IsEmulated(root):
		ref.Kind = AnchorEmulatedRoot
	default:
		for _, e := range embedded {
			if sha256.Sum256(e.Raw) == sum {
				ref.Kind = AnchorVendorRoot
				break
			}
		}
	}
	return ref
}
