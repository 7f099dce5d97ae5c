package snpabi

import (
	"bytes"
	"testing"
)

func TestTCBLayoutBytesDistinct(t *testing.T) {
	for _, product := range Products {
		used := map[int]string{}
		for _, f := range TCBLayout(product) {
			if other, ok := used[f.Byte]; ok {
				t.Errorf("%s: %s and %s both occupy byte %d", product, other, f.Name, f.Byte)
			}
			used[f.Byte] = f.Name
		}
		reserved, _ := ReservedTCBBytes(product)
		for _, b := range reserved {
			if name, ok := used[b]; ok {
				t.Errorf("%s: reserved byte %d is the %s byte", product, b, name)
			}
			used[b] = "reserved"
		}
		if len(used) != 8 {
			t.Errorf("%s: layout covers %d of the 8 TCB_VERSION bytes", product, len(used))
		}
	}
}

func TestTCBByte(t *testing.T) {
	const tcb = 0x7308000000000203
	if got := TCBByte(tcb, 0); got != 3 {
		t.Errorf("byte 0 = %d, expected 3", got)
	}
	if got := TCBByte(tcb, 1); got != 2 {
		t.Errorf("byte 1 = %d, expected 2", got)
	}
	if got := TCBByte(tcb, 6); got != 8 {
		t.Errorf("byte 6 = %d, expected 8", got)
	}
	if got := TCBByte(tcb, 7); got != 0x73 {
		t.Errorf("byte 7 = %d, expected 115", got)
	}
}

func TestHWID(t *testing.T) {
	chipID := bytes.Repeat([]byte{0xab}, ChipIDSize)
	if got := HWID(ProductTurin, chipID); len(got) != TurinHWIDSize {
		t.Errorf("Turin hwid is %d bytes, expected %d", len(got), TurinHWIDSize)
	}
	if got := HWID(ProductMilan, chipID); len(got) != ChipIDSize {
		t.Errorf("Milan hwid is %d bytes, expected %d", len(got), ChipIDSize)
	}
	if got := HWID(ProductGenoa, chipID); len(got) != ChipIDSize {
		t.Errorf("Genoa hwid is %d bytes, expected %d", len(got), ChipIDSize)
	}
}

func TestHWIDSize(t *testing.T) {
	for product, expected := range map[string]int{ProductMilan: ChipIDSize, ProductGenoa: ChipIDSize, ProductTurin: TurinHWIDSize} {
		if got := HWIDSize(product); got != expected {
			t.Errorf("HWIDSize(%s) = %d, expected %d", product, got, expected)
		}
	}
}
