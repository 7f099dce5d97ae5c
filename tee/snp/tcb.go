package snp

import (
	"fmt"

	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/internal/snpabi"
)

// Product names as AMD's Key Distribution Service spells them.
const (
	ProductMilan = snpabi.ProductMilan
	ProductGenoa = snpabi.ProductGenoa
	ProductTurin = snpabi.ProductTurin
)

// tcbComponents splits a TCB_VERSION into its named components.
func tcbComponents(product string, tcb uint64) []attest.TCBComponent {
	var out []attest.TCBComponent
	for _, f := range snpabi.TCBLayout(product) {
		out = append(out, attest.TCBComponent{Name: f.Name, Value: snpabi.TCBByte(tcb, f.Byte)})
	}
	return out
}

// composeTCB builds a TCB_VERSION from named components, the inverse of
// tcbComponents. Missing components are zero.
func composeTCB(product string, values map[string]uint8) uint64 {
	var tcb uint64
	for _, f := range snpabi.TCBLayout(product) {
		tcb |= uint64(values[f.Name]) << (8 * f.Byte)
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
