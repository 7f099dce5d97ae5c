package snp

import (
	"context"
	"testing"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/internal/corpus"
)

func FuzzParseReport(f *testing.F) {
	for _, c := range corpus.Cases(f, "snp") {
		f.Add(c.EvidenceBytes(f))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		if err != nil {
			return
		}
		if got := r.marshal(); string(got) != string(data) {
			t.Errorf("marshal(ParseReport(data)) differs from data")
		}
		if _, err := (&Verifier{}).Inspect(data); err != nil {
			t.Errorf("Inspect fails on a report that parses: %v", err)
		}
	})
}

func FuzzVerify(f *testing.F) {
	set := &collateral.Set{}
	for _, c := range corpus.Cases(f, "snp") {
		f.Add(c.EvidenceBytes(f), []byte(nil))
		set.Merge(c.Collateral(f))
	}
	e := sharedEmulator(f, EmulatorOptions{})
	ev, err := e.Attest(context.Background(), []byte("fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ev.Data, ev.Aux)
	set.Merge(e.Collateral())
	opts := attest.Options{At: corpus.Cases(f, "snp")[0].Time(f), Collateral: set, TrustAnchors: anchors(e)}
	v := &Verifier{}
	f.Fuzz(func(t *testing.T, data, aux []byte) {
		claims, err := v.Verify(context.Background(), attest.Evidence{Data: data, Aux: aux}, opts)
		if err == nil && claims == nil {
			t.Fatal("Verify returned neither claims nor an error")
		}
	})
}
