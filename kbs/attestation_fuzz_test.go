package kbs

import (
	"encoding/json"
	"os"
	"testing"
)

// FuzzParseAttestationMatchesEncodingJSON checks that ParseAttestation
// accepts and rejects what parseAttestationReference, json.Unmarshal into
// an Attestation after exactReferenceText, does, and decodes the same
// fields.
func FuzzParseAttestationMatchesEncodingJSON(f *testing.F) {
	for _, tt := range attestationCases {
		f.Add([]byte(tt.body))
	}
	for _, body := range vectorAttestationBodies(f) {
		f.Add(body)
	}
	for _, body := range roundTripBodies(f) {
		f.Add(body)
	}
	f.Add(nativeNVIDIAAttestation(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkMatchesReference(t, data)
	})
}

// referenceRuntimeData is the primary runtime data object as json.Marshal
// encodes it, the input of the canonical form before appendRuntimeData.
type referenceRuntimeData struct {
	AdditionalEvidence string    `json:"additional-evidence"`
	Nonce              string    `json:"nonce"`
	TEEPubKey          TEEPubKey `json:"tee-pubkey"`
}

// checkRuntimeDataCanonical fails t when the primary or device runtime
// data differ from Canonicalize of their json.Marshal encoding.
func checkRuntimeDataCanonical(t *testing.T, nonce string, key TEEPubKey, additional string) {
	t.Helper()
	marshalled, err := json.Marshal(referenceRuntimeData{AdditionalEvidence: additional, Nonce: nonce, TEEPubKey: key})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Canonicalize(marshalled)
	if err != nil {
		t.Fatal(err)
	}
	got := PrimaryRuntimeData(nonce, key, additional)
	if string(got) != string(want) {
		t.Errorf("primary runtime data = %q, Canonicalize gives %q", got, want)
	}

	marshalled, err = json.Marshal(RuntimeData{Nonce: nonce, TEEPubKey: key})
	if err != nil {
		t.Fatal(err)
	}
	want, err = Canonicalize(marshalled)
	if err != nil {
		t.Fatal(err)
	}
	got = DeviceRuntimeData(nonce, key)
	if string(got) != string(want) {
		t.Errorf("device runtime data = %q, Canonicalize gives %q", got, want)
	}
}

// runtimeDataStrings are member values that JSON encodes in different
// ways: escapes, HTML characters that json.Marshal escapes, line and
// paragraph separators, characters outside the Basic Multilingual Plane
// and invalid UTF-8.
var runtimeDataStrings = []string{
	"",
	"2YMaoknw9hQMiLuvwhqxSUAn91zY9AHyI54D+DsziMo=",
	"quote\" backslash\\ slash/",
	"\b\f\n\r\t\x00\x01\x1f\x7f",
	"<script>&amp;</script>",
	"line\u2028paragraph\u2029",
	"é ü 中文 😀 \U0010FFFF",
	"\ufffd",
	"invalid \xff\xfe \xc3 \xed\xa0\x80 \xf4\x90\x80\x80",
	`{"sampledevice":{"svn":"1","report_data":"AAEC"}}`,
}

func TestRuntimeDataMatchesCanonicalize(t *testing.T) {
	keys := []TEEPubKey{
		{Kty: "EC", Crv: "P-256", Alg: AlgECDHESA256KW, X: "fdKfML4hl7MaCTytptGJ5XYMR9ufeeVCtWjteYaUEj8", Y: "5lxY1vZzFvmiT-d-HW1U1CoclAd9kPoqSTQ8qjDZfvM"},
		{Kty: "RSA", Alg: AlgRSAOAEP256, N: "3Q", E: "AQAB"},
		{Kty: "EC", Alg: "A"},
		{},
		{Kty: "RSA", Crv: "c", Alg: "a", X: "x", Y: "y", N: "n", E: "e"},
	}
	keys = append(keys, vectorKeys(t)...)
	for _, body := range roundTripBodies(t) {
		a, err := ParseAttestation(body)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, a.RuntimeData.TEEPubKey)
	}

	for _, key := range keys {
		for _, s := range runtimeDataStrings {
			checkRuntimeDataCanonical(t, s, key, "")
			checkRuntimeDataCanonical(t, "bm9uY2U=", key, s)
		}
	}
	for _, s := range runtimeDataStrings {
		checkRuntimeDataCanonical(t, "n", TEEPubKey{Kty: s, Crv: s, Alg: s, X: s, Y: s, N: s, E: s}, s)
	}
}

// vectorKeys returns the TEE keys of the KBS protocol vectors.
func vectorKeys(t *testing.T) []TEEPubKey {
	var keys []TEEPubKey
	for _, file := range vectorFiles() {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			RuntimeData *struct {
				TEEPubKey TEEPubKey `json:"tee-pubkey"`
			} `json:"runtime_data"`
			Sent *TEEPubKey `json:"tee_pubkey_as_sent_in_runtime_data"`
		}
		if json.Unmarshal(data, &doc) != nil {
			continue
		}
		if doc.RuntimeData != nil {
			keys = append(keys, doc.RuntimeData.TEEPubKey)
		}
		if doc.Sent != nil {
			keys = append(keys, *doc.Sent)
		}
	}
	return keys
}

// FuzzRuntimeDataMatchesCanonicalize checks the canonical runtime data
// against Canonicalize of the json.Marshal encoding for any nonce, key
// members and additional evidence.
func FuzzRuntimeDataMatchesCanonicalize(f *testing.F) {
	for _, s := range runtimeDataStrings {
		f.Add(s, "EC", "P-256", AlgECDHESA256KW, s, "y", "", "", "")
		f.Add("n", "RSA", "", s, "", "", s, "AQAB", s)
	}
	f.Fuzz(func(t *testing.T, nonce, kty, crv, alg, x, y, n, e, additional string) {
		key := TEEPubKey{Kty: kty, Crv: crv, Alg: alg, X: x, Y: y, N: n, E: e}
		checkRuntimeDataCanonical(t, nonce, key, additional)
	})
}

// nativeNVIDIAAttestation returns an Attestation body whose
// additional_evidence carries the NVIDIA attester's JSON.
func nativeNVIDIAAttestation(f *testing.F) []byte {
	additional := `{"nvidia":` + nativeNVIDIASeed(f) + `}`
	body, err := json.Marshal(Attestation{
		RuntimeData: RuntimeData{Nonce: "2YMaoknw9hQMiLuvwhqxSUAn91zY9AHyI54D+DsziMo=",
			TEEPubKey: TEEPubKey{Kty: "EC", Crv: "P-256", Alg: AlgECDHESA256KW, X: "eA", Y: "eQ"}},
		TEEEvidence: TEEEvidence{PrimaryEvidence: json.RawMessage(`{"svn":"1","report_data":""}`), AdditionalEvidence: additional},
	})
	if err != nil {
		f.Fatal(err)
	}
	return body
}
