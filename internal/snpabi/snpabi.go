// Package snpabi defines the facts about AMD SEV-SNP hardware that both the
// report verifier (tee/snp) and the Key Distribution Service client
// (collateral) need: the product names, the size of CHIP_ID and the
// TCB_VERSION layout of each product. It imports nothing from the project,
// so both packages can use it although the tests of tee/snp import
// collateral.
package snpabi

// Product names as AMD's Key Distribution Service spells them in its URL
// paths.
const (
	ProductMilan = "Milan"
	ProductGenoa = "Genoa"
	ProductTurin = "Turin"
)

// Products lists the products that KDS serves certificates for.
var Products = []string{ProductMilan, ProductGenoa, ProductTurin}

// PreTurinProducts lists the products whose firmware can produce version 2
// reports, which carry no CPUID and so do not name their product.
var PreTurinProducts = []string{ProductMilan, ProductGenoa}

// ChipIDSize is the size of the CHIP_ID field of an attestation report in
// bytes.
const ChipIDSize = 64

// TurinHWIDSize is the size of a Turin chip ID in bytes. Turin writes it
// zero-padded into CHIP_ID, and KDS indexes Turin VCEKs by these bytes alone.
const TurinHWIDSize = 8

// HWIDSize returns the size in bytes of the hardware ID by which KDS
// indexes a product's VCEKs: TurinHWIDSize on Turin, ChipIDSize before.
func HWIDSize(product string) int {
	if product == ProductTurin {
		return TurinHWIDSize
	}
	return ChipIDSize
}

// HWID returns the part of a CHIP_ID that names the chip: the first
// TurinHWIDSize bytes on Turin, all of it on earlier products.
func HWID(product string, chipID []byte) []byte {
	if size := HWIDSize(product); len(chipID) > size {
		return chipID[:size]
	}
	return chipID
}

// TCBField is one component of a TCB_VERSION.
type TCBField struct {
	// Name is the component's name in claims, such as "bootloader".
	Name string
	// Byte is the byte of the little-endian TCB_VERSION the component
	// occupies.
	Byte int
	// SPLArc is the last arc of the VCEK certificate extension
	// 1.3.6.1.4.1.3704.1.3.x that certifies the component.
	SPLArc int
	// KDSParameter is the query parameter of a KDS VCEK request that
	// carries the component, such as "blSPL".
	KDSParameter string
}

// TCBLayout returns the TCB_VERSION layout of a product, in the order KDS
// request URLs list the parameters. Milan and Genoa put BOOT_LOADER in byte
// 0, TEE in byte 1, SNP in byte 6 and MICROCODE in byte 7, with bytes 2 to
// 5 reserved. Turin adds FMC in byte 0 and moves BOOT_LOADER, TEE and SNP to
// bytes 1 to 3, with bytes 4 to 6 reserved (SEV-SNP firmware ABI
// specification, TCB_VERSION structure). A product other than Turin gets
// the Milan and Genoa layout.
func TCBLayout(product string) []TCBField {
	if product == ProductTurin {
		return []TCBField{
			{"fmc", 0, 9, "fmcSPL"},
			{"bootloader", 1, 1, "blSPL"},
			{"tee", 2, 2, "teeSPL"},
			{"snp", 3, 3, "snpSPL"},
			{"microcode", 7, 8, "ucodeSPL"},
		}
	}
	return []TCBField{
		{"bootloader", 0, 1, "blSPL"},
		{"tee", 1, 2, "teeSPL"},
		{"snp", 6, 3, "snpSPL"},
		{"microcode", 7, 8, "ucodeSPL"},
	}
}

// ReservedTCBBytes returns the reserved bytes of a product's TCB_VERSION and
// the spl_4 to spl_7 extension arcs that certify them on Milan and Genoa.
// Turin certificates carry no extension for its reserved bytes, so arcs is
// nil there.
func ReservedTCBBytes(product string) (bytes []int, arcs []int) {
	if product == ProductTurin {
		return []int{4, 5, 6}, nil
	}
	return []int{2, 3, 4, 5}, []int{4, 5, 6, 7}
}

// TCBByte returns byte i of a TCB_VERSION.
func TCBByte(tcb uint64, i int) uint64 { return (tcb >> (8 * i)) & 0xff }
