package snp

import (
	"fmt"

	"github.com/cloister-dev/cloister/attest"
)

// Product names as AMD's Key Distribution Service spells them.
const (
	ProductMilan = "Milan"
	ProductGenoa = "Genoa"
	ProductTurin = "Turin"
)

// tcbField is one component of a TCB_VERSION: its name in Claims, the byte
// it occupies and the VCEK certificate extension that certifies it.
type tcbField struct {
	name string
	byte int
	oid  int // last arc of 1.3.6.1.4.1.3704.1.3.x
}

// tcbLayout returns the TCB_VERSION layout of a product. Milan and Genoa put
// BOOT_LOADER in byte 0, TEE in byte 1, SNP in byte 6 and MICROCODE in byte
// 7, with bytes 2 to 5 reserved. Turin adds FMC in byte 0 and moves
// BOOT_LOADER, TEE and SNP to bytes 1 to 3, with bytes 4 to 6 reserved
// (SEV-SNP firmware ABI specification, TCB_VERSION structure).
func tcbLayout(product string) []tcbField {
	if product == ProductTurin {
		return []tcbField{
			{"fmc", 0, 9},
			{"bootloader", 1, 1},
			{"tee", 2, 2},
			{"snp", 3, 3},
			{"microcode", 7, 8},
		}
	}
	return []tcbField{
		{"bootloader", 0, 1},
		{"tee", 1, 2},
		{"snp", 6, 3},
		{"microcode", 7, 8},
	}
}

// reservedTCBBytes returns the reserved bytes of a product's TCB_VERSION and
// the spl_4 to spl_7 extension arcs that certify them on Milan and Genoa.
func reservedTCBBytes(product string) (bytes []int, oids []int) {
	if product == ProductTurin {
		return []int{4, 5, 6}, nil
	}
	return []int{2, 3, 4, 5}, []int{4, 5, 6, 7}
}

// tcbComponents splits a TCB_VERSION into its named components.
func tcbComponents(product string, tcb uint64) []attest.TCBComponent {
	var out []attest.TCBComponent
	for _, f := range tcbLayout(product) {
		out = append(out, attest.TCBComponent{Name: f.name, Value: tcbByte(tcb, f.byte)})
	}
	return out
}

func tcbByte(tcb uint64, i int) uint64 { return (tcb >> (8 * i)) & 0xff }

// composeTCB builds a TCB_VERSION from named components, the inverse of
// tcbComponents. Missing components are zero.
func composeTCB(product string, values map[string]uint8) uint64 {
	var tcb uint64
	for _, f := range tcbLayout(product) {
		tcb |= uint64(values[f.name]) << (8 * f.byte)
	}
	return tcb
}

// formatTCB prints a TCB_VERSION with its components, such as
// "0x7308000000000003 (bootloader=3 tee=0 snp=8 microcode=115)".
func formatTCB(product string, tcb uint64) string {
	s := fmt.Sprintf("0x%016x (", tcb)
	for i, c := range tcbComponents(product, tcb) {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s=%d", c.Name, c.Value)
	}
	return s + ")"
}

// productFromCPUID names the product of a report's CPUID family and model
// (version 3 and later), or returns "" for a combination this package does
// not know.
func productFromCPUID(family, model uint8) string {
	switch {
	case family == 0x19 && model == 0x01:
		return ProductMilan
	case family == 0x19 && model == 0x11:
		return ProductGenoa
	case family == 0x1A && model == 0x02:
		return ProductTurin
	}
	return ""
}

// cpuidOf returns the CPUID family, model and stepping that an emulated
// report of product carries.
func cpuidOf(product string) (family, model, stepping uint8) {
	switch product {
	case ProductGenoa:
		return 0x19, 0x11, 1
	case ProductTurin:
		return 0x1A, 0x02, 0
	}
	return 0x19, 0x01, 1
}
