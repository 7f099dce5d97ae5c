package tpm

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/google/go-tpm-tools/proto/attest"
	"google.golang.org/protobuf/proto"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
)

// gceCase returns the corpus case with a GCE attestation that carries an
// AK certificate and an event log.
func gceCase(t *testing.T) corpus.Case {
	t.Helper()
	c, ok := corpus.FirstAccepted(t, "tpm", func(c corpus.Case) bool { return strings.HasSuffix(c.Expect.Evidence, ".pb") })
	if !ok {
		t.Skip("no accepted GCE attestation in the corpus")
	}
	return c
}

// verifyEdited decodes the case's attestation, lets edit change it,
// encodes it again and verifies the result with the case's options.
func verifyEdited(t *testing.T, c corpus.Case, edit func(*pb.Attestation)) (*attest.Claims, error) {
	t.Helper()
	var a pb.Attestation
	if err := proto.Unmarshal(c.EvidenceBytes(t), &a); err != nil {
		t.Fatal(err)
	}
	edit(&a)
	data, err := proto.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	return Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, c.Options(t))
}

// appendEvent appends a crypto-agile TCG_PCR_EVENT2 for pcr with digests of
// every algorithm the GCE log uses (SHA-1, SHA-256, SHA-384).
func appendEvent(log []byte, pcr uint32) []byte {
	le := binary.LittleEndian
	ev := le.AppendUint32(nil, pcr)
	ev = le.AppendUint32(ev, 0x0d) // EV_IPL
	ev = le.AppendUint32(ev, 3)
	for _, d := range []struct {
		alg  uint16
		size int
	}{{0x0004, 20}, {0x000b, 32}, {0x000c, 48}} {
		ev = le.AppendUint16(ev, d.alg)
		digest := make([]byte, d.size)
		digest[0] = 0x42
		ev = append(ev, digest...)
	}
	data := []byte("an event the quoted PCRs never saw")
	ev = le.AppendUint32(ev, uint32(len(data)))
	return append(append(append([]byte{}, log...), ev...), data...)
}

func TestGCEEventLogNotReplaying(t *testing.T) {
	c := gceCase(t)
	claims, err := verifyEdited(t, c, func(a *pb.Attestation) { a.EventLog = appendEvent(a.EventLog, 8) })
	if !errors.Is(err, attest.ErrBinding) {
		t.Fatalf("error = %v, want a binding error", err)
	}
	if !strings.Contains(err.Error(), "event log") || !strings.Contains(err.Error(), "PCR 8") {
		t.Errorf("error %q does not name the event log and PCR 8", err)
	}
	if claims == nil {
		t.Fatal("no claims with the replay error, although every quote verified")
	}
}

func TestGCEEventLogMissing(t *testing.T) {
	c := gceCase(t)
	claims, err := verifyEdited(t, c, func(a *pb.Attestation) { a.EventLog = nil })
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, ch := range claims.Checks {
		if ch.Name == CheckEventLogReplay && ch.Result != attest.CheckNotChecked {
			t.Errorf("event-log-replay = %s, want not-checked", ch.Result)
		}
	}
}

func TestGCEAKNotCertified(t *testing.T) {
	c := gceCase(t)
	data := c.EvidenceBytes(t)

	// A root of another Google CA, which did not issue this AK.
	otherRoot := filepath.Join(c.Dir, "..", "_roots", "gce-tpm-ek-ca", "gcp_ek_ak_ca_root.crt")
	if _, err := os.Stat(otherRoot); err != nil {
		t.Skipf("other root not in the corpus: %v", err)
	}
	set, err := collateral.LoadPath(otherRoot)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{At: c.Time(t), Collateral: set})
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("error = %v, want a chain error", err)
	}
	if !corpus.MatchesReason(err.Error(), "root") {
		t.Errorf("error %q does not name the root", err)
	}
}

func TestGCEAKCertificateExpired(t *testing.T) {
	c := gceCase(t)
	at := time.Date(2060, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: c.EvidenceBytes(t)}, attest.Options{At: at, Collateral: c.Collateral(t)})
	if !errors.Is(err, attest.ErrChain) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("error = %v, want a chain error saying the certificate expired", err)
	}
}

func TestGCEPinnedAKOverridesCertificate(t *testing.T) {
	c := gceCase(t)
	data := c.EvidenceBytes(t)
	ev, err := ParseEvidence(data)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{Collateral: pinnedSet(t, ev.AKKey)})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if claims.TrustAnchor.Kind != attest.AnchorCallerKey || claims.TrustAnchor.TestKey {
		t.Errorf("trust anchor = %+v, want a caller key that is not a test key", claims.TrustAnchor)
	}
}

func TestGCECanonicalEventLogNotChecked(t *testing.T) {
	c := gceCase(t)
	claims, err := verifyEdited(t, c, func(a *pb.Attestation) { a.CanonicalEventLog = []byte{0x01} })
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	found := false
	for _, ch := range claims.Checks {
		if ch.Name == CheckCanonicalEventLog {
			found = true
			if ch.Result != attest.CheckNotChecked {
				t.Errorf("%s = %s, want not-checked", ch.Name, ch.Result)
			}
		}
	}
	if !found {
		t.Errorf("no %s check recorded", CheckCanonicalEventLog)
	}
}

// TestGCEPinnedOtherAK pins another AK than the attestation's. A caller
// that pins AKs names the TPMs it trusts, so the embedded Google roots must
// not admit any other GCE VM, as caller roots displace the embedded ones.
func TestGCEPinnedOtherAK(t *testing.T) {
	c := gceCase(t)
	data := c.EvidenceBytes(t)

	claims, err := Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{At: c.Time(t), Collateral: pinnedSet(t, rsaKey.Public())})
	if err == nil {
		t.Fatalf("Verify accepted an AK other than the pinned one (trust anchor %+v)", claims.TrustAnchor)
	}
	if !errors.Is(err, attest.ErrChain) {
		t.Errorf("error kind = %s, expected chain: %v", attest.KindName(err), err)
	}
	if !strings.Contains(err.Error(), "pinned") {
		t.Errorf("error %q does not name the pinned AK", err)
	}

	// With the caller's own root beside the pin, the certificate counts.
	set := pinnedSet(t, rsaKey.Public())
	set.Merge(c.Collateral(t))
	_, err = Verifier{}.Verify(context.Background(), attest.Evidence{Data: data}, attest.Options{At: c.Time(t), Collateral: set})
	if err != nil {
		t.Errorf("Verify with a pinned AK and the caller's root: %v", err)
	}
}
