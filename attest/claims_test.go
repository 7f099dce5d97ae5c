package attest

import "testing"

func TestFindCheck(t *testing.T) {
	c := &Claims{}
	c.Pass("signature")
	c.Skip("revocation", false, "no CRL")
	c.Fail("signature", "second record")

	ch, ok := c.FindCheck("signature")
	if !ok {
		t.Fatal("FindCheck(signature) found nothing")
	}
	if ch.Result != CheckPassed {
		t.Errorf("FindCheck(signature).Result = %s, want the first record, %s", ch.Result, CheckPassed)
	}
	if ch, ok := c.FindCheck("revocation"); !ok || ch.Result != CheckNotChecked {
		t.Errorf("FindCheck(revocation) = %+v, %v; want a not-checked record", ch, ok)
	}
	if ch, ok := c.FindCheck("missing"); ok || ch != (Check{}) {
		t.Errorf("FindCheck(missing) = %+v, %v; want the zero Check and false", ch, ok)
	}
}
