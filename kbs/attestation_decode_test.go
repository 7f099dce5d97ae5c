package kbs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/cloister-dev/cloister/tee/snp"
)

// parseAttestationReference is ParseAttestation as json.Unmarshal into an
// Attestation followed by the same member checks: the behavior that
// ParseAttestation must keep. Before json.Unmarshal, which matches names
// without regard to case and decodes a repeated member each time,
// exactReferenceText keeps only the members with exact names and rejects a
// repeated one, as Trustee's serde types do.
func parseAttestationReference(data []byte) (*Attestation, error) {
	data, err := exactReferenceText(data)
	if err != nil {
		return nil, err
	}
	var a Attestation
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, err
	}
	if a.RuntimeData.Nonce == "" || a.RuntimeData.TEEPubKey.Kty == "" {
		return nil, fmt.Errorf("missing runtime data")
	}
	if len(a.TEEEvidence.PrimaryEvidence) == 0 || bytes.Equal(a.TEEEvidence.PrimaryEvidence, []byte("null")) {
		return nil, fmt.Errorf("missing primary evidence")
	}
	return &a, nil
}

// exactReferenceText returns the /attest body data with only the members
// of exact names in the body and in its runtime-data, tee-pubkey,
// tee-evidence and init-data objects, and rejects a repeated member of
// those objects. It reads data with json.Decoder, independently of the
// index that ParseAttestation uses. Data that is not a valid JSON object
// is returned as it is, for json.Unmarshal to reject.
func exactReferenceText(data []byte) ([]byte, error) {
	if !json.Valid(data) {
		return data, nil
	}
	return exactReferenceObject(data, map[string]func([]byte) ([]byte, error){
		"init-data": func(v []byte) ([]byte, error) { return exactReferenceObject(v, keepNames("format", "body")) },
		"runtime-data": func(v []byte) ([]byte, error) {
			return exactReferenceObject(v, map[string]func([]byte) ([]byte, error){
				"nonce": keepValue,
				"tee-pubkey": func(v []byte) ([]byte, error) {
					return exactReferenceObject(v, keepNames("kty", "crv", "alg", "x", "y", "n", "e"))
				},
			})
		},
		"tee-evidence": func(v []byte) ([]byte, error) {
			return exactReferenceObject(v, keepNames("primary_evidence", "additional_evidence"))
		},
	})
}

func keepValue(v []byte) ([]byte, error) { return v, nil }

// keepNames returns the rule of exactReferenceObject that keeps the values
// of names as they are.
func keepNames(names ...string) map[string]func([]byte) ([]byte, error) {
	rules := map[string]func([]byte) ([]byte, error){}
	for _, name := range names {
		rules[name] = keepValue
	}
	return rules
}

// exactReferenceObject rewrites the valid JSON value data, when it is an
// object, to the members whose names are keys of rules, each value
// rewritten by its rule, and rejects a repeated member.
func exactReferenceObject(data []byte, rules map[string]func([]byte) ([]byte, error)) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return data, nil
	}
	seen := map[string]bool{}
	var out bytes.Buffer
	out.WriteByte('{')
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, err
		}
		rule, ok := rules[name]
		if !ok {
			continue
		}
		if seen[name] {
			return nil, fmt.Errorf("repeated member %q", name)
		}
		seen[name] = true
		value, err = rule(value)
		if err != nil {
			return nil, err
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		quoted, _ := json.Marshal(name)
		out.Write(quoted)
		out.WriteByte(':')
		out.Write(value)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// checkMatchesReference fails t when ParseAttestation and
// parseAttestationReference disagree on data: one accepts and the other
// rejects, or both accept with different fields.
func checkMatchesReference(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := parseAttestationReference(data)
	got, err := ParseAttestation(data)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("ParseAttestation(%.300q) error = %v, encoding/json error = %v", data, err, wantErr)
	}
	if err != nil {
		return
	}
	if (got.InitData == nil) != (want.InitData == nil) {
		t.Errorf("init-data = %+v, encoding/json gives %+v", got.InitData, want.InitData)
	} else if got.InitData != nil && *got.InitData != *want.InitData {
		t.Errorf("init-data = %+v, encoding/json gives %+v", *got.InitData, *want.InitData)
	}
	if got.RuntimeData != want.RuntimeData {
		t.Errorf("runtime-data = %+v, encoding/json gives %+v", got.RuntimeData, want.RuntimeData)
	}
	if !bytes.Equal(got.TEEEvidence.PrimaryEvidence, want.TEEEvidence.PrimaryEvidence) {
		t.Errorf("primary_evidence = %.200s, encoding/json gives %.200s", got.TEEEvidence.PrimaryEvidence, want.TEEEvidence.PrimaryEvidence)
	}
	if got.TEEEvidence.AdditionalEvidence != want.TEEEvidence.AdditionalEvidence {
		t.Errorf("additional_evidence = %q, encoding/json gives %q", got.TEEEvidence.AdditionalEvidence, want.TEEEvidence.AdditionalEvidence)
	}
}

// Member values for hand-written bodies.
const (
	ecKeyJSON    = `{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"fdKfML4hl7MaCTytptGJ5XYMR9ufeeVCtWjteYaUEj8","y":"5lxY1vZzFvmiT-d-HW1U1CoclAd9kPoqSTQ8qjDZfvM"}`
	rsaKeyJSON   = `{"kty":"RSA","alg":"RSA-OAEP-256","n":"3Q","e":"AQAB"}`
	runtimeJSON  = `{"nonce":"bm9uY2U=","tee-pubkey":` + ecKeyJSON + `}`
	envelopeJSON = `{"format":"snp","data":"AAEC"}`
)

// attestationCases are bodies that exercise how member names, repeats,
// nulls and types resolve.
var attestationCases = []struct {
	name string
	body string
}{
	{"minimal", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":` + envelopeJSON + `}}`},
	{"all members", `{"init-data":{"format":"toml","body":"algorithm = \"sha384\""},"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":` + envelopeJSON + `,"additional_evidence":"{\"sampledevice\":{}}"}}`},
	{"space around everything", " \n{ \"runtime-data\" : " + runtimeJSON + " , \"tee-evidence\" : { \"primary_evidence\" : " + envelopeJSON + " } } \t"},
	{"unknown members", `{"x":[1,{"y":null}],"runtime-data":` + runtimeJSON + `,"z":"w","tee-evidence":{"q":1,"primary_evidence":` + envelopeJSON + `}}`},
	{"names in other case", `{"Runtime-Data":` + runtimeJSON + `,"TEE-EVIDENCE":{"Primary_Evidence":` + envelopeJSON + `,"ADDITIONAL_evidence":"a"}}`},
	{"kelvin sign folds to k", `{"runtime-data":{"nonce":"bg==","tee-pub\u212aey":` + ecKeyJSON + `},"tee-evidence":{"primary_evidence":1}}`},
	{"escaped names", `{"runtime\u002ddata":` + runtimeJSON + `,"\u0074ee-evidence":{"primary_evidenc\u0065":` + envelopeJSON + `}}`},
	{"dotless i does not fold to i", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1},"\u0131nit-data":{"format":"toml","body":"b"}}`},
	{"repeated runtime-data merges", `{"runtime-data":{"nonce":"a","tee-pubkey":` + ecKeyJSON + `},"runtime-data":{"nonce":"b"},"tee-evidence":{"primary_evidence":2}}`},
	{"repeated runtime-data null keeps", `{"runtime-data":` + runtimeJSON + `,"runtime-data":null,"tee-evidence":{"primary_evidence":2}}`},
	{"repeated tee-evidence merges", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1,"additional_evidence":"a"},"tee-evidence":{"primary_evidence":[2]},"tee-evidence":null}`},
	{"repeated primary_evidence last wins", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1,"primary_evidence":"two"}}`},
	{"primary_evidence null after value", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1,"primary_evidence":null}}`},
	{"primary_evidence null", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":null}}`},
	{"primary_evidence missing", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{}}`},
	{"primary_evidence false", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":false}}`},
	{"additional_evidence null", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1,"additional_evidence":"a","additional_evidence":null}}`},
	{"additional_evidence number", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1,"additional_evidence":5}}`},
	{"additional_evidence escapes", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1,"additional_evidence":"\u00e9\n\ud83d\ude00\u2028<>&"}}`},
	{"additional_evidence wrong type then string", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1,"additional_evidence":{},"additional_evidence":"a"}}`},
	{"tee-evidence string", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":"x"}`},
	{"tee-evidence array", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":[{"primary_evidence":1}]}`},
	{"tee-evidence wrong type then object", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":1,"tee-evidence":{"primary_evidence":1}}`},
	{"runtime-data string", `{"runtime-data":"x","tee-evidence":{"primary_evidence":1}}`},
	{"runtime-data wrong type then object", `{"runtime-data":true,"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1}}`},
	{"nonce number", `{"runtime-data":{"nonce":1,"tee-pubkey":` + ecKeyJSON + `},"tee-evidence":{"primary_evidence":1}}`},
	{"nonce missing", `{"runtime-data":{"tee-pubkey":` + ecKeyJSON + `},"tee-evidence":{"primary_evidence":1}}`},
	{"tee-pubkey missing", `{"runtime-data":{"nonce":"a"},"tee-evidence":{"primary_evidence":1}}`},
	{"tee-pubkey null", `{"runtime-data":{"nonce":"a","tee-pubkey":null},"tee-evidence":{"primary_evidence":1}}`},
	{"tee-pubkey RSA", `{"runtime-data":{"nonce":"a","tee-pubkey":` + rsaKeyJSON + `},"tee-evidence":{"primary_evidence":1}}`},
	{"tee-pubkey EC without y", `{"runtime-data":{"nonce":"a","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"A","x":"x"}},"tee-evidence":{"primary_evidence":1}}`},
	{"tee-pubkey kty oct", `{"runtime-data":{"nonce":"a","tee-pubkey":{"kty":"oct","alg":"A"}},"tee-evidence":{"primary_evidence":1}}`},
	{"init-data null", `{"init-data":null,"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1}}`},
	{"init-data null after object", `{"init-data":{"format":"toml","body":"b"},"init-data":null,"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1}}`},
	{"init-data merges", `{"init-data":{"format":"toml","body":"b"},"init-data":{"body":"c"},"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1}}`},
	{"init-data string", `{"init-data":"toml","runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1}}`},
	{"invalid UTF-8 in a name", "{\"runtime-data\xff\":1,\"runtime-data\":" + runtimeJSON + `,"tee-evidence":{"primary_evidence":1}}`},
	{"invalid UTF-8 in a value", "{\"runtime-data\":{\"nonce\":\"a\xff\",\"tee-pubkey\":" + ecKeyJSON + `},"tee-evidence":{"primary_evidence":"\xfe"}}`},
	{"body null", `null`},
	{"body array", `[]`},
	{"body string", `"x"`},
	{"body number", `1`},
	{"body empty", ``},
	{"body space", ` `},
	{"trailing data", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1}} {}`},
	{"trailing comma", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1},}`},
	{"truncated", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":1}`},
	{"single quotes", `{'runtime-data':1}`},
}

func TestParseAttestationMatchesEncodingJSON(t *testing.T) {
	for _, tt := range attestationCases {
		t.Run(tt.name, func(t *testing.T) {
			checkMatchesReference(t, []byte(tt.body))
		})
	}
}

func TestParseAttestationVectorsMatch(t *testing.T) {
	// vectorDir skips the test when the vectors are absent, except under CI.
	vectorDir(t)
	bodies := vectorAttestationBodies(t)
	if len(bodies) == 0 {
		t.Fatal("the KBS vectors have no /attest body")
	}
	for i, body := range bodies {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			checkMatchesReference(t, body)
			if _, err := ParseAttestation(body); err != nil {
				t.Errorf("vector body rejected: %v", err)
			}
		})
	}
}

func TestParseAttestationRoundTripBodies(t *testing.T) {
	for i, body := range roundTripBodies(t) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			checkMatchesReference(t, body)
			a, err := ParseAttestation(body)
			if err != nil {
				t.Fatalf("kbs.Client body rejected: %v", err)
			}
			if _, err := decodeValidEvidence("snp", a.TEEEvidence.PrimaryEvidence); err != nil {
				t.Errorf("primary evidence of a kbs.Client body: %v", err)
			}
		})
	}
}

// The rejections name the member that is wrong.
func TestParseAttestationErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"invalid JSON", `{"runtime-data":`, "invalid Attestation JSON: unexpected end of JSON input; send the /attest body as one JSON object"},
		{"trailing data", `{} {}`, "invalid Attestation JSON: invalid character '{' after top-level value; send the /attest body as one JSON object"},
		{"body array", `[]`, `invalid Attestation JSON: the body is an array, not an object; send {"runtime-data", "tee-evidence"} as one JSON object`},
		{"body null", `null`, "invalid Attestation: missing runtime-data.nonce; send the nonce of the /auth challenge as a string"},
		{"missing nonce", `{"runtime-data":{"tee-pubkey":` + ecKeyJSON + `}}`, "invalid Attestation: missing runtime-data.nonce; send the nonce of the /auth challenge as a string"},
		{"missing key", `{"runtime-data":{"nonce":"a"}}`, "invalid Attestation: missing runtime-data.tee-pubkey; send the TEE public key as an EC or RSA JWK"},
		{"missing evidence", `{"runtime-data":` + runtimeJSON + `}`, "invalid Attestation: missing tee-evidence.primary_evidence; put the TEE's evidence in it"},
		{"null evidence", `{"runtime-data":` + runtimeJSON + `,"tee-evidence":{"primary_evidence":null}}`, "invalid Attestation: missing tee-evidence.primary_evidence; put the TEE's evidence in it"},
		{"runtime-data type", `{"runtime-data":[]}`, `invalid Attestation: runtime-data: json: cannot unmarshal array into Go value of type kbs.RuntimeData; send runtime-data as {"nonce": a string, "tee-pubkey": an EC or RSA JWK}`},
		{"tee-evidence type", `{"tee-evidence":"x"}`, `invalid Attestation: tee-evidence is a string, not an object; send {"primary_evidence", "additional_evidence"}`},
		{"additional_evidence type", `{"tee-evidence":{"additional_evidence":1}}`, "invalid Attestation: tee-evidence.additional_evidence: json: cannot unmarshal number into Go value of type string; additional_evidence must be a string"},
		{"init-data type", `{"init-data":1}`, `invalid Attestation: init-data: json: cannot unmarshal number into Go value of type kbs.InitData; init-data must be an object {"format", "body"} of strings`},
		{"key kty", `{"runtime-data":{"tee-pubkey":{"kty":"oct"}}}`, `invalid Attestation: runtime-data: invalid tee-pubkey: kty "oct" is not EC or RSA; send runtime-data as {"nonce": a string, "tee-pubkey": an EC or RSA JWK}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAttestation([]byte(tt.body))
			wantErrorText(t, err, tt.want)
		})
	}
}

// The /auth rejections name the member and what to send instead.
func TestParseRequestErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"no version", `{"tee":"snp","extra-params":""}`, `invalid Request: missing member version; send "version": "0.4.0"`},
		{"unknown tee", `{"version":"0.4.0","tee":"sev","extra-params":""}`, `invalid Request: unknown tee "sev"; send a tee that the KBS protocol defines, such as "snp" or "tdx"`},
		{"no extra-params", `{"version":"0.4.0","tee":"snp"}`, `invalid Request: missing member extra-params; send "extra-params": "" or an object with supported-hash-algorithms`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRequest([]byte(tt.body))
			wantErrorText(t, err, tt.want)
		})
	}
}

// wantErrorText fails t unless err is an error whose text is want.
func wantErrorText(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

// vectorAttestationBodies returns the /attest bodies of the KBS protocol
// vectors, and bodies that carry the vectors' native guest evidence as
// primary evidence.
func vectorAttestationBodies(t testing.TB) [][]byte {
	var bodies [][]byte
	for _, file := range vectorFiles() {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			BodyBytes *string          `json:"attest_request_body_bytes"`
			Body      json.RawMessage  `json:"attest_request_body"`
			Cases     []map[string]any `json:"cases"`
			// Guest evidence files have one of these members.
			AttestationReport json.RawMessage `json:"attestation_report"`
			TPMQuote          json.RawMessage `json:"tpm_quote"`
		}
		if json.Unmarshal(data, &doc) != nil {
			continue
		}
		if doc.BodyBytes != nil {
			bodies = append(bodies, []byte(*doc.BodyBytes))
		}
		if doc.Body != nil {
			bodies = append(bodies, doc.Body)
		}
		for _, c := range doc.Cases {
			if c["type"] == "Attestation" {
				input, _ := json.Marshal(c["input"])
				bodies = append(bodies, input)
			}
		}
		if doc.AttestationReport != nil || doc.TPMQuote != nil {
			bodies = append(bodies, []byte(`{"runtime-data":`+runtimeJSON+`,"tee-evidence":{"primary_evidence":`+string(bytes.TrimSpace(data))+`,"additional_evidence":""}}`))
		}
	}
	return bodies
}

var (
	roundTripOnce   sync.Once
	roundTripResult [][]byte
	roundTripErr    error
)

// roundTripBodies returns the /attest bodies that kbs.Client sends with
// emulated SEV-SNP evidence, one for each TEE key type and one with init
// data. A loopback server records them and responds as a KBS would.
func roundTripBodies(t testing.TB) [][]byte {
	t.Helper()
	roundTripOnce.Do(func() { roundTripResult, roundTripErr = recordRoundTrips() })
	if roundTripErr != nil {
		t.Fatal(roundTripErr)
	}
	return roundTripResult
}

// writeStubChallenge responds to the /auth request of a loopback KBS stub
// with a fixed challenge and session cookie.
func writeStubChallenge(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "s"})
	w.Write([]byte(`{"nonce":"2YMaoknw9hQMiLuvwhqxSUAn91zY9AHyI54D+DsziMo=","extra-params":""}`))
}

// recordingKBSHandler is a KBS stub that issues a challenge on /auth and
// returns a token for every /attest, whose body it stores. bodies returns
// the stored bodies.
func recordingKBSHandler() (handler http.Handler, bodies func() [][]byte) {
	var mu sync.Mutex
	var stored [][]byte
	handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/kbs/v0/auth":
			writeStubChallenge(w)
		case "/kbs/v0/attest":
			mu.Lock()
			stored = append(stored, body)
			mu.Unlock()
			w.Write([]byte(`{"token":"t"}`))
		default:
			http.NotFound(w, r)
		}
	})
	return handler, func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return stored
	}
}

func recordRoundTrips() ([][]byte, error) {
	em, err := snp.NewEmulator(snp.EmulatorOptions{})
	if err != nil {
		return nil, err
	}
	handler, bodies := recordingKBSHandler()
	srv := httptest.NewServer(handler)
	defer srv.Close()

	clients := []*Client{
		{KeyType: "P-256"},
		{KeyType: "P-521"},
		{KeyType: "RSA"},
		{KeyType: "P-256", InitData: &InitData{Format: "toml", Body: "algorithm = \"sha384\"\nversion = \"0.1.0\"\n"}},
	}
	for _, c := range clients {
		c.URL, c.Attester, c.TEE = srv.URL, em, "snp"
		if _, err := c.Attest(context.Background()); err != nil {
			return nil, err
		}
	}
	return bodies(), nil
}

// BenchmarkAttestationDecode measures ParseAttestation, decodeValidEvidence
// and PrimaryDigest on the /attest body of an SEV-SNP round trip. For
// comparison it also runs json.Unmarshal and Canonicalize of json.Marshal,
// the forms that the first and the last replace.
func BenchmarkAttestationDecode(b *testing.B) {
	body := roundTripBodies(b)[0]
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := parseAttestationReference(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParseAttestation", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := ParseAttestation(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	a, err := ParseAttestation(body)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decodeValidEvidence", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeValidEvidence("snp", a.TEEEvidence.PrimaryEvidence); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PrimaryDigest", func(b *testing.B) {
		for b.Loop() {
			if _, err := PrimaryDigest(SHA384, a.RuntimeData.Nonce, a.RuntimeData.TEEPubKey, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PrimaryDigest-Canonicalize", func(b *testing.B) {
		for b.Loop() {
			raw, _ := json.Marshal(referenceRuntimeData{Nonce: a.RuntimeData.Nonce, TEEPubKey: a.RuntimeData.TEEPubKey})
			c, err := Canonicalize(raw)
			if err != nil {
				b.Fatal(err)
			}
			SHA384.Sum(c)
		}
	})
}
