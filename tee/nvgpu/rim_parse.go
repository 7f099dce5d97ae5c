package nvgpu

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/cloister-dev/cloister/attest"
)

// Limits of a RIM document. NVIDIA's sample driver and VBIOS RIMs in nvtrust
// are about 20 KB, nest 5 elements deep and list 64 measurements with a few
// attributes each. These bounds leave wide room for real RIMs, and they keep
// the tree of a hostile document to an estimated few tens of megabytes.
const (
	MaxRIMSize         = 4 << 20
	maxRIMDepth        = 16
	maxRIMElements     = 8192
	maxRIMAttributes   = 65536
	maxRIMAlternatives = 64
	maxRIMMeasurement  = 1024
	// maxRIMIndex keeps index+1 within the one-byte SPDM block index.
	maxRIMIndex = 254
)

// XML namespaces of NVIDIA's RIMs: ISO/IEC 19770-2:2015 SWID tags, XML-DSig
// signatures, and the namespace that NVIDIA's RIMs put the SHA-384 golden
// values in (the XML Encryption identifier of SHA-384).
const (
	swidNamespace   = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
	dsigNamespace   = "http://www.w3.org/2000/09/xmldsig#"
	sha384Namespace = "http://www.w3.org/2001/04/xmlenc#sha384"
)

// errNotSWID marks an XML document whose root element is not a SWID
// SoftwareIdentity, which is therefore not a RIM at all.
var errNotSWID = errors.New("the root element is not a SWID SoftwareIdentity")

// RIM is the content of an NVIDIA reference integrity manifest: the golden
// measurements of one driver or VBIOS version of one GPU product.
type RIM struct {
	// TagID is the SWID tagId, which NVIDIA sets to a SHA-384 digest.
	TagID string
	// Product is the Meta product attribute, such as GH100.
	Product string
	// Version is the Meta colloquialVersion: a driver version (550.90.07)
	// or a VBIOS version (96.00.9F.00.01).
	Version string
	// Measurements are sorted by index, each index appearing once.
	Measurements []GoldenMeasurement
}

// GoldenMeasurement is one Payload/Resource element of a RIM.
type GoldenMeasurement struct {
	// Index counts from 0, so it is the SPDM measurement block index
	// minus one, as NVIDIA's local GPU verifier pairs them.
	Index int
	Name  string
	// Size is the length of each value in bytes.
	Size int
	// Active is false for a measurement that the verifier must not
	// compare with the report.
	Active bool
	// Values are the alternatives: the report's block must equal one.
	Values [][]byte
}

// readRIMDocument parses data as an XML document within the RIM limits. A
// DOCTYPE is rejected, because RIMs never carry one and entity declarations
// are a classic way to inflate a document.
func readRIMDocument(data []byte) (*etree.Document, error) {
	if len(data) > MaxRIMSize {
		return nil, fmt.Errorf("%d bytes is over the %d-byte limit of a RIM", len(data), MaxRIMSize)
	}
	if err := scanRIMTokens(data); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{MaxDepth: maxRIMDepth}
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, fmt.Errorf("invalid XML: %w", err)
	}
	if doc.Root() == nil {
		return nil, errors.New("no root element")
	}
	return doc, nil
}

// scanRIMTokens walks the document once with the strict standard decoder
// before etree builds a tree, so that the element, attribute and depth
// limits hold before any tree memory is spent.
func scanRIMTokens(data []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	depth, elements, attributes := 0, 0, 0
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("invalid XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			elements++
			attributes += len(t.Attr)
		case xml.EndElement:
			depth--
		case xml.Directive:
			return errors.New("a DOCTYPE or other directive is not allowed in a RIM")
		}
		switch {
		case depth > maxRIMDepth:
			return fmt.Errorf("elements nest deeper than %d levels", maxRIMDepth)
		case elements > maxRIMElements:
			return fmt.Errorf("more than %d elements", maxRIMElements)
		case attributes > maxRIMAttributes:
			return fmt.Errorf("more than %d attributes", maxRIMAttributes)
		}
	}
	if depth != 0 {
		return errors.New("invalid XML: unclosed elements at the end of the document")
	}
	return nil
}

// ParseRIM decodes the SWID tag of a RIM without checking its signature:
// the identity, the version and the golden measurements. Its result is
// untrusted, so verification decodes only the content that the signature
// check returns. It rejects documents over MaxRIMSize, and FuzzParseRIM
// checks that it does not panic.
func ParseRIM(data []byte) (*RIM, error) {
	doc, err := readRIMDocument(data)
	if err != nil {
		return nil, err
	}
	return decodeSWID(doc.Root())
}

// decodeSWID reads a SoftwareIdentity element. The rules follow NVIDIA's
// local GPU verifier: the first Meta gives the version, and each child of
// the single Payload is a Resource whose index appears once. An attribute
// that the verifier reads must be present and valid here.
func decodeSWID(root *etree.Element) (*RIM, error) {
	if root.Tag != "SoftwareIdentity" || root.NamespaceURI() != swidNamespace {
		return nil, errNotSWID
	}
	rim := &RIM{TagID: plainAttr(root, "tagId")}
	var err error
	if rim.Product, rim.Version, err = readMeta(root); err != nil {
		return nil, err
	}

	payload := swidChildren(root, "Payload")
	if len(payload) != 1 {
		return nil, fmt.Errorf("SoftwareIdentity has %d Payload elements; a RIM has exactly one", len(payload))
	}
	for _, el := range payload[0].ChildElements() {
		m, err := decodeResource(el)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(rim.Measurements, func(o GoldenMeasurement) bool { return o.Index == m.Index }) {
			return nil, fmt.Errorf("Payload lists measurement index %d twice", m.Index)
		}
		rim.Measurements = append(rim.Measurements, m)
	}

	if len(rim.Measurements) == 0 {
		return nil, errors.New("Payload lists no measurements")
	}
	slices.SortFunc(rim.Measurements, func(a, b GoldenMeasurement) int { return a.Index - b.Index })
	return rim, nil
}

// readMeta returns the product and the colloquialVersion of the first Meta
// element of a SoftwareIdentity. The version must not be empty.
func readMeta(root *etree.Element) (product, version string, err error) {
	meta := swidChildren(root, "Meta")
	if len(meta) == 0 {
		return "", "", errors.New("SoftwareIdentity has no Meta element")
	}
	version = strings.TrimSpace(plainAttr(meta[0], "colloquialVersion"))
	product = strings.TrimSpace(plainAttr(meta[0], "product"))
	if version == "" {
		return "", "", errors.New("Meta has no colloquialVersion, the driver or VBIOS version the RIM describes")
	}
	return product, version, nil
}

// swidChildren returns the child elements of el named tag in the SWID
// namespace.
func swidChildren(el *etree.Element, tag string) []*etree.Element {
	return childrenIn(el, swidNamespace, tag)
}

// childrenIn returns the child elements of el named tag in namespace.
func childrenIn(el *etree.Element, namespace, tag string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == namespace {
			out = append(out, c)
		}
	}
	return out
}

// decodeResource reads one Payload/Resource element: index, name, size,
// active, alternatives, and the values Hash0 to Hash{alternatives-1} in the
// SHA-384 namespace.
func decodeResource(el *etree.Element) (GoldenMeasurement, error) {
	var m GoldenMeasurement
	if el.Tag != "Resource" || el.NamespaceURI() != swidNamespace {
		return m, fmt.Errorf("Payload contains a %s element; expected only Resource elements", el.Tag)
	}

	var err error
	if m.Index, err = intAttr(el, "index", 0, maxRIMIndex); err != nil {
		return m, err
	}
	where := fmt.Sprintf("Resource index %d", m.Index)
	if m.Size, err = intAttr(el, "size", 1, maxRIMMeasurement); err != nil {
		return m, fmt.Errorf("%s: %w", where, err)
	}
	alternatives, err := intAttr(el, "alternatives", 1, maxRIMAlternatives)
	if err != nil {
		return m, fmt.Errorf("%s: %w", where, err)
	}

	// NVIDIA's local GPU verifier compares every measurement whose active
	// attribute is not exactly "False", so "false" is rejected here rather
	// than skipped.
	switch active := plainAttr(el, "active"); active {
	case "True", "true":
		m.Active = true
	case "False":
	default:
		return m, fmt.Errorf("%s: active is %q; expected True or False", where, active)
	}

	m.Name = plainAttr(el, "name")
	for i := range alternatives {
		v, err := hashAttr(el, "Hash"+strconv.Itoa(i), m.Size)
		if err != nil {
			return m, fmt.Errorf("%s: %w", where, err)
		}
		m.Values = append(m.Values, v)
	}
	return m, nil
}

// intAttr returns the decimal attribute key of el, which must lie in
// [minimum, maximum].
func intAttr(el *etree.Element, key string, minimum, maximum int) (int, error) {
	value := plainAttr(el, key)
	if value == "" {
		return 0, fmt.Errorf("attribute %s is missing", key)
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < minimum || n > maximum {
		return 0, fmt.Errorf("attribute %s is %q; expected an integer from %d to %d", key, value, minimum, maximum)
	}
	return n, nil
}

// plainAttr returns the value of the unprefixed attribute key of el, or ""
// when it is absent. etree's SelectAttr would also match a prefixed
// attribute of the same local name.
func plainAttr(el *etree.Element, key string) string {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == key {
			return a.Value
		}
	}
	return ""
}

// hashAttr returns the hexadecimal value of the attribute key in the
// SHA-384 namespace, which must be size bytes long.
func hashAttr(el *etree.Element, key string, size int) ([]byte, error) {
	for i := range el.Attr {
		a := &el.Attr[i]
		if a.Key != key || a.NamespaceURI() != sha384Namespace {
			continue
		}
		v, err := hex.DecodeString(a.Value)
		if err != nil {
			return nil, fmt.Errorf("attribute %s is not hexadecimal: %w", key, err)
		}
		if len(v) != size {
			return nil, fmt.Errorf("attribute %s has %d bytes, but the size attribute is %d", key, len(v), size)
		}
		return v, nil
	}
	return nil, fmt.Errorf("attribute %s in the SHA-384 namespace %s is missing", key, sha384Namespace)
}

// rimMalformed wraps a parse failure of the RIM from source.
func rimMalformed(source string, err error) error {
	return attest.Malformed("RIM "+source, err.Error(), nil).
		WithFix("pass the RIM file exactly as NVIDIA's RIM service returns it (SWID tag XML), or remove it from the collateral")
}
