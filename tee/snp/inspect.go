package snp

import (
	"encoding/hex"
	"fmt"
)

// Inspect decodes every field of a report without verifying anything. The
// TCB values are split by the layout of the product that the report's CPUID
// names. A version 2 report carries no CPUID, so its TCB values are split
// by the Milan and Genoa layout, which every product before Turin uses.
func (*Verifier) Inspect(data []byte) (any, error) {
	r, err := ParseReport(data)
	if err != nil {
		return nil, err
	}
	product := ""
	if r.HasCPUID {
		product = productFromCPUID(r.CPUIDFamily, r.CPUIDModel)
	}
	layout := product
	if layout == "" {
		layout = ProductMilan
	}
	fields := map[string]any{
		"version":            r.Version,
		"guest_svn":          r.GuestSVN,
		"policy":             fmt.Sprintf("0x%x", r.Policy),
		"policy_decoded":     decodePolicy(r.Policy),
		"family_id":          hex.EncodeToString(r.FamilyID[:]),
		"image_id":           hex.EncodeToString(r.ImageID[:]),
		"vmpl":               r.VMPL,
		"signature_algo":     r.SignatureAlgo,
		"current_tcb":        formatTCB(layout, r.CurrentTCB),
		"platform_info":      fmt.Sprintf("0x%x", r.PlatformInfo),
		"platform_decoded":   decodePlatformInfo(r.PlatformInfo),
		"author_key_en":      r.AuthorKeyEnabled(),
		"mask_chip_key":      r.MaskChipKey(),
		"signing_key":        r.SigningKeyName(),
		"report_data":        hex.EncodeToString(r.ReportData[:]),
		"measurement":        hex.EncodeToString(r.Measurement[:]),
		"host_data":          hex.EncodeToString(r.HostData[:]),
		"id_key_digest":      hex.EncodeToString(r.IDKeyDigest[:]),
		"author_key_digest":  hex.EncodeToString(r.AuthorKeyDigest[:]),
		"report_id":          hex.EncodeToString(r.ReportID[:]),
		"report_id_ma":       hex.EncodeToString(r.ReportIDMA[:]),
		"reported_tcb":       formatTCB(layout, r.ReportedTCB),
		"chip_id":            hex.EncodeToString(r.ChipID[:]),
		"committed_tcb":      formatTCB(layout, r.CommittedTCB),
		"current_firmware":   fmt.Sprintf("%d.%d.%d", r.CurrentMajor, r.CurrentMinor, r.CurrentBuild),
		"committed_firmware": fmt.Sprintf("%d.%d.%d", r.CommittedMajor, r.CommittedMinor, r.CommittedBuild),
		"launch_tcb":         formatTCB(layout, r.LaunchTCB),
		"signature_r":        hex.EncodeToString(r.SignatureR[:]),
		"signature_s":        hex.EncodeToString(r.SignatureS[:]),
		"tcb_layout":         layout,
	}
	if r.HasCPUID {
		fields["cpuid_family"] = fmt.Sprintf("0x%02x", r.CPUIDFamily)
		fields["cpuid_model"] = fmt.Sprintf("0x%02x", r.CPUIDModel)
		fields["cpuid_stepping"] = fmt.Sprintf("0x%x", r.CPUIDStepping)
		fields["product_from_cpuid"] = product
	}
	if r.HasMitigationVectors {
		fields["launch_mit_vector"] = fmt.Sprintf("0x%016x", r.LaunchMitVector)
		fields["current_mit_vector"] = fmt.Sprintf("0x%016x", r.CurrentMitVector)
	}
	return fields, nil
}

// decodePolicy names the guest policy bits (SEV-SNP ABI, GUEST_POLICY).
func decodePolicy(p uint64) map[string]any {
	bit := func(n uint) bool { return p&(1<<n) != 0 }
	return map[string]any{
		"abi_minor":              p & 0xff,
		"abi_major":              (p >> 8) & 0xff,
		"smt":                    bit(16),
		"migrate_ma":             bit(18),
		"debug":                  bit(19),
		"single_socket":          bit(20),
		"cxl_allow":              bit(21),
		"mem_aes_256_xts":        bit(22),
		"rapl_dis":               bit(23),
		"ciphertext_hiding_dram": bit(24),
		"page_swap_disable":      bit(25),
	}
}

// decodePlatformInfo names the PLATFORM_INFO bits.
func decodePlatformInfo(p uint64) map[string]bool {
	bit := func(n uint) bool { return p&(1<<n) != 0 }
	return map[string]bool{
		"smt_en":                    bit(0),
		"tsme_en":                   bit(1),
		"ecc_en":                    bit(2),
		"rapl_dis":                  bit(3),
		"ciphertext_hiding_dram_en": bit(4),
		"alias_check_complete":      bit(5),
		"tio_en":                    bit(7),
	}
}
