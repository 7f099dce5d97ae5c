package nvgpu

import (
	"crypto"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/cloister-dev/cloister/attest"
)

// emulatedVBIOSVersion is emulatedVBIOS as a RIM's colloquialVersion
// writes it.
const emulatedVBIOSVersion = "96.00.9F.00.01"

// RIM files that RIMFiles returns, named after the identifiers under which
// NVIDIA's RIM service would publish RIMs of these versions (see
// rimServiceIDs), with the .swidtag extension of SWID tag files.
const (
	fileDriverRIM = "NV_GPU_DRIVER_" + emulatedChip + "_" + emulatedDriverVersion + ".swidtag"
	fileVBIOSRIM  = "NV_GPU_VBIOS_" + emulatedProject + "_" + emulatedProjectSKU + "_" + emulatedChipSKU + "_96009F0001.swidtag"
)

// RIMFiles returns the driver and the VBIOS RIM by file name, each signed
// now under the development RIM root. The driver RIM has the golden values
// of the first emulatedDriverBlocks measurement blocks and the VBIOS RIM
// those of the others. Each lists every index, active only where it
// vouches for the block, as NVIDIA's RIMs do.
func (e *Emulator) RIMFiles() (map[string][]byte, error) {
	driver, err := e.signRIM(componentDriver, emulatedDriverVersion, func(index int) bool { return index < emulatedDriverBlocks })
	if err != nil {
		return nil, err
	}
	vbios, err := e.signRIM(componentVBIOS, emulatedVBIOSVersion, func(index int) bool { return index >= emulatedDriverBlocks })
	if err != nil {
		return nil, err
	}
	return map[string][]byte{fileDriverRIM: driver, fileVBIOSRIM: vbios}, nil
}

// signRIM writes the SWID tag of one component and signs it.
func (e *Emulator) signRIM(component, version string, active func(index int) bool) ([]byte, error) {
	doc := rimDocument(component, version, active)
	data, err := e.sign(doc)
	if err != nil {
		return nil, fmt.Errorf("nvgpu emulator: signing the %s RIM: %w", component, err)
	}
	return data, nil
}

// rimDocument builds the SWID tag in the layout that decodeSWID reads: a
// Meta with the product and colloquialVersion, and one Payload with a
// Resource for each measurement block, whose golden value is the
// attribute Hash0 in the SHA-384 namespace. RIM index i is SPDM block i+1.
// The document is indented here, because the signature covers its
// whitespace.
func rimDocument(component, version string, active func(index int) bool) *etree.Document {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	root := doc.CreateElement("SoftwareIdentity")
	root.CreateAttr("xmlns", swidNamespace)
	root.CreateAttr("xmlns:SHA384", sha384Namespace)
	root.CreateAttr("corpus", "false")
	root.CreateAttr("name", "Cloister emulated "+emulatedChip+" "+component+" (development only)")
	root.CreateAttr("patch", "false")
	root.CreateAttr("supplemental", "false")
	root.CreateAttr("tagId", "cloister-emulated-"+strings.ToLower(component)+"-"+version)
	root.CreateAttr("version", version)
	root.CreateAttr("tagVersion", "0")

	entity := root.CreateElement("Entity")
	entity.CreateAttr("name", attest.EmulatedOrganization)
	entity.CreateAttr("role", "softwareCreator tagCreator")
	meta := root.CreateElement("Meta")
	meta.CreateAttr("colloquialVersion", version)
	meta.CreateAttr("edition", "GPU")
	meta.CreateAttr("product", emulatedChip)

	payload := root.CreateElement("Payload")
	for index := range emulatedBlocks {
		r := payload.CreateElement("Resource")
		r.CreateAttr("type", "Measurement")
		r.CreateAttr("index", strconv.Itoa(index))
		r.CreateAttr("active", activeAttr(active(index)))
		r.CreateAttr("alternatives", "1")
		r.CreateAttr("SHA384:Hash0", hex.EncodeToString(measurement(index+1)))
		r.CreateAttr("name", "Measurement_"+strconv.Itoa(index))
		r.CreateAttr("size", strconv.Itoa(sha384Size))
	}
	doc.Indent(2)
	return doc
}

// activeAttr returns the active attribute of a Resource, True or False as
// NVIDIA's RIMs write it.
func activeAttr(active bool) string {
	if active {
		return "True"
	}
	return "False"
}

// sha384Size is the size of a golden value, a SHA-384 digest.
const sha384Size = 48

// sign adds an enveloped XML-DSig signature to the document's root element
// under C14N 1.1, ECDSA P-384 and SHA-384, with the signing certificate and
// the root in KeyInfo, as NVIDIA signs its RIMs, and returns the document. The
// SignatureValue is in XML-DSig's r||s form, as in NVIDIA's files, not
// goxmldsig's ASN.1 DER.
func (e *Emulator) sign(doc *etree.Document) ([]byte, error) {
	ctx, err := dsig.NewSigningContext(e.rimKey, [][]byte{e.rimSigner.Raw, e.rimRoot.Raw})
	if err != nil {
		return nil, err
	}
	ctx.Hash = crypto.SHA384
	ctx.Prefix = "ds"
	signed, err := ctx.SignEnveloped(doc.Root())
	if err != nil {
		return nil, err
	}
	if err := rawECDSASignature(signed); err != nil {
		return nil, err
	}
	doc.SetRoot(signed)
	return doc.WriteToBytes()
}

// rawECDSASignature rewrites the ASN.1 DER SignatureValue of signed as the
// 96-byte r||s of XML-DSig (RFC 6931 section 2.3.6). The SignatureValue is
// outside the signed content, so the rewrite changes no signed byte.
func rawECDSASignature(signed *etree.Element) error {
	value := signed.FindElement("./Signature/SignatureValue")
	if value == nil {
		return fmt.Errorf("the signed document has no SignatureValue")
	}
	der, err := base64.StdEncoding.DecodeString(value.Text())
	if err != nil {
		return err
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		return err
	}
	raw := append(rs.R.FillBytes(make([]byte, SignatureSize/2)), rs.S.FillBytes(make([]byte, SignatureSize/2))...)
	value.SetText(base64.StdEncoding.EncodeToString(raw))
	return nil
}
