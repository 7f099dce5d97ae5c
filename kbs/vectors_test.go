package kbs

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// vectorDir returns the KBS protocol vectors directory, from
// CLOISTER_KBS_VECTORS or beside the module root. Tests skip when it is
// absent, except under CI.
func vectorDir(t *testing.T) string {
	t.Helper()
	dir := vectorDirPath()
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("KBS vectors not found at %s (set CLOISTER_KBS_VECTORS)", dir)
		}
		t.Skipf("KBS vectors not found at %s (set CLOISTER_KBS_VECTORS)", dir)
	}
	return dir
}

// vectorDirPath returns the path of the KBS protocol vectors directory,
// whether or not it exists.
func vectorDirPath() string {
	if dir := os.Getenv("CLOISTER_KBS_VECTORS"); dir != "" {
		return dir
	}
	return filepath.Join("..", "..", "shared", "protocols", "kbs-vectors")
}

// vectorFiles returns the JSON files of the KBS protocol vectors, or none
// when the directory is absent.
func vectorFiles() []string {
	files, _ := filepath.Glob(filepath.Join(vectorDirPath(), "*.json"))
	return files
}

func loadVector(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRuntimeDataHashUpstream(t *testing.T) {
	var v struct {
		Cases []struct {
			RuntimeData json.RawMessage `json:"runtime_data"`
			Canonical   string          `json:"expected_canonical_utf8"`
			Hash        HashAlgorithm   `json:"hash_algorithm"`
			Digest      string          `json:"expected_digest_hex"`
		} `json:"cases"`
	}
	loadVector(t, "trustee_runtime-data-hash.json", &v)
	for _, c := range v.Cases {
		got, err := Canonicalize(c.RuntimeData)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.Canonical {
			t.Errorf("canonical form = %s, want %s", got, c.Canonical)
		}
		sum, _ := c.Hash.Sum(got)
		if hex.EncodeToString(sum) != c.Digest {
			t.Errorf("digest = %x, want %s", sum, c.Digest)
		}
	}
}

type sampleFlow struct {
	TEEPrivateKey struct {
		PKCS8 string `json:"pkcs8_pem"`
	} `json:"tee_private_key"`
	AuthRequestBytes   string            `json:"auth_request_body_bytes"`
	ChallengeBytes     string            `json:"challenge_response_body_bytes"`
	RuntimeData        RuntimeData       `json:"runtime_data"`
	DeviceCanonical    string            `json:"device_runtime_data_canonical"`
	DeviceDigests      map[string]string `json:"device_runtime_data_digests_hex"`
	PrimaryCanonical   string            `json:"primary_runtime_data_canonical"`
	PrimaryDigests     map[string]string `json:"primary_runtime_data_digests_hex"`
	AttestRequestBytes string            `json:"attest_request_body_bytes"`
	ReportDataByTEE    struct {
		Sample struct {
			Value string `json:"value"`
		} `json:"sample"`
		SNP string `json:"snp_tdx_sgx_64_byte_report_data_hex"`
	} `json:"report_data_by_tee"`
}

func loadSampleFlow(t *testing.T) sampleFlow {
	var f sampleFlow
	loadVector(t, "cloister_sample-flow-p256.json", &f)
	return f
}

func TestSampleFlowRuntimeData(t *testing.T) {
	f := loadSampleFlow(t)
	key := f.RuntimeData.TEEPubKey

	primary := PrimaryRuntimeData(f.RuntimeData.Nonce, key, "")
	if string(primary) != f.PrimaryCanonical {
		t.Errorf("primary runtime data = %s, want %s", primary, f.PrimaryCanonical)
	}
	device := DeviceRuntimeData(f.RuntimeData.Nonce, key)
	if string(device) != f.DeviceCanonical {
		t.Errorf("device runtime data = %s, want %s", device, f.DeviceCanonical)
	}
	for _, h := range []HashAlgorithm{SHA256, SHA384, SHA512} {
		got, _ := PrimaryDigest(h, f.RuntimeData.Nonce, key, "")
		if hex.EncodeToString(got) != f.PrimaryDigests[string(h)] {
			t.Errorf("primary %s digest = %x, want %s", h, got, f.PrimaryDigests[string(h)])
		}
		got, _ = DeviceDigest(h, f.RuntimeData.Nonce, key)
		if hex.EncodeToString(got) != f.DeviceDigests[string(h)] {
			t.Errorf("device %s digest = %x, want %s", h, got, f.DeviceDigests[string(h)])
		}
	}

	digest, _ := PrimaryDigest(DefaultHash, f.RuntimeData.Nonce, key, "")
	if got := base64.StdEncoding.EncodeToString(ReportDataFor("sample", digest)); got != f.ReportDataByTEE.Sample.Value {
		t.Errorf("sample report data = %s, want %s", got, f.ReportDataByTEE.Sample.Value)
	}
	if got := hex.EncodeToString(ReportDataFor("snp", digest)); got != f.ReportDataByTEE.SNP {
		t.Errorf("SNP report data = %s, want %s", got, f.ReportDataByTEE.SNP)
	}

	// The client derives the same tee-pubkey JWK from the private key.
	priv := parsePKCS8(t, f.TEEPrivateKey.PKCS8)
	jwk, err := PublicKeyJWK(priv)
	if err != nil {
		t.Fatal(err)
	}
	if jwk != key {
		t.Errorf("PublicKeyJWK = %+v, want %+v", jwk, key)
	}
}

func TestSampleFlowWireBodies(t *testing.T) {
	f := loadSampleFlow(t)

	req, err := ParseRequest([]byte(f.AuthRequestBytes))
	if err != nil {
		t.Fatal(err)
	}
	if req.Version != ProtocolVersion || req.TEE != "sample" {
		t.Errorf("Request = %+v", req)
	}
	// The client writes the same /auth body byte for byte.
	body, _ := json.Marshal(newRequest("sample"))
	if string(body) != f.AuthRequestBytes {
		t.Errorf("client /auth body = %s, want %s", body, f.AuthRequestBytes)
	}

	var ch Challenge
	if err := json.Unmarshal([]byte(f.ChallengeBytes), &ch); err != nil {
		t.Fatal(err)
	}
	if h, err := SelectedHash(ch.ExtraParams); err != nil || h != SHA384 {
		t.Errorf("SelectedHash = %v, %v; want sha384", h, err)
	}

	att, err := ParseAttestation([]byte(f.AttestRequestBytes))
	if err != nil {
		t.Fatal(err)
	}
	if att.InitData != nil {
		t.Errorf("init-data = %+v, want nil", att.InitData)
	}
	if att.RuntimeData != f.RuntimeData {
		t.Errorf("runtime data = %+v, want %+v", att.RuntimeData, f.RuntimeData)
	}
	// tee-pubkey keeps the guest's member order when written again.
	pub, _ := json.Marshal(att.RuntimeData.TEEPubKey)
	if !strings.HasPrefix(string(pub), `{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":`) {
		t.Errorf("tee-pubkey JSON = %s", pub)
	}
}

func TestCompositeSampleDevice(t *testing.T) {
	var v struct {
		RuntimeData        RuntimeData       `json:"runtime_data"`
		DeviceReportData   string            `json:"device_report_data_b64"`
		Additional         string            `json:"additional_evidence_string"`
		PrimaryCanonical   string            `json:"primary_runtime_data_canonical"`
		PrimaryDigests     map[string]string `json:"primary_runtime_data_digests_hex"`
		PrimaryReportData  string            `json:"primary_report_data_b64"`
		AttestRequestBytes string            `json:"attest_request_body_bytes"`
	}
	loadVector(t, "cloister_composite-sampledevice.json", &v)
	att, err := ParseAttestation([]byte(v.AttestRequestBytes))
	if err != nil {
		t.Fatal(err)
	}
	if att.TEEEvidence.AdditionalEvidence != v.Additional {
		t.Errorf("additional_evidence = %q, want %q", att.TEEEvidence.AdditionalEvidence, v.Additional)
	}
	canon := PrimaryRuntimeData(v.RuntimeData.Nonce, v.RuntimeData.TEEPubKey, v.Additional)
	if string(canon) != v.PrimaryCanonical {
		t.Errorf("primary runtime data = %s, want %s", canon, v.PrimaryCanonical)
	}
	for h, want := range v.PrimaryDigests {
		got, _ := PrimaryDigest(HashAlgorithm(h), v.RuntimeData.Nonce, v.RuntimeData.TEEPubKey, v.Additional)
		if hex.EncodeToString(got) != want {
			t.Errorf("primary %s digest = %x, want %s", h, got, want)
		}
	}
	primary, _ := PrimaryDigest(SHA384, v.RuntimeData.Nonce, v.RuntimeData.TEEPubKey, v.Additional)
	if got := base64.StdEncoding.EncodeToString(primary); got != v.PrimaryReportData {
		t.Errorf("primary report data = %s, want %s", got, v.PrimaryReportData)
	}
	device, _ := DeviceDigest(SHA384, v.RuntimeData.Nonce, v.RuntimeData.TEEPubKey)
	if got := base64.StdEncoding.EncodeToString(device); got != v.DeviceReportData {
		t.Errorf("device report data = %s, want %s", got, v.DeviceReportData)
	}
}

func TestHashSelection(t *testing.T) {
	var v struct {
		Cases []struct {
			ExtraParams json.RawMessage `json:"challenge_extra_params"`
			Result      string          `json:"result"`
		} `json:"cases"`
	}
	loadVector(t, "guest-components_hash-algorithm-selection.json", &v)
	for _, c := range v.Cases {
		got, err := SelectedHash(c.ExtraParams)
		if strings.HasPrefix(c.Result, "error") {
			if err == nil {
				t.Errorf("SelectedHash(%s) = %s, want an error", c.ExtraParams, got)
			}
			continue
		}
		if err != nil || string(got) != c.Result {
			t.Errorf("SelectedHash(%s) = %q, %v; want %s", c.ExtraParams, got, err, c.Result)
		}
	}
}

func TestWireTypesUpstream(t *testing.T) {
	var v struct {
		Cases []struct {
			Name     string                     `json:"name"`
			Type     string                     `json:"type"`
			Input    json.RawMessage            `json:"input"`
			Expected map[string]json.RawMessage `json:"expected"`
		} `json:"cases"`
	}
	loadVector(t, "kbs-types_wire-types.json", &v)
	str := func(raw json.RawMessage) string {
		var s string
		json.Unmarshal(raw, &s)
		return s
	}
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			switch {
			case c.Type == "Request":
				r, err := ParseRequest(c.Input)
				if err != nil {
					t.Fatal(err)
				}
				if r.Version != str(c.Expected["version"]) || r.TEE != str(c.Expected["tee"]) {
					t.Errorf("Request = %+v", r)
				}
			case c.Type == "Challenge":
				var ch Challenge
				if err := json.Unmarshal(c.Input, &ch); err != nil {
					t.Fatal(err)
				}
				if ch.Nonce != str(c.Expected["nonce"]) || string(ch.ExtraParams) != string(c.Expected["extra-params"]) {
					t.Errorf("Challenge = %+v", ch)
				}
			case c.Type == "ProtectedHeader":
				var hdr map[string]json.RawMessage
				json.Unmarshal(c.Input, &hdr)
				aad, err := guestAAD(hdr)
				if err != nil {
					t.Fatal(err)
				}
				if string(aad) != str(c.Expected["aad_ascii"]) {
					t.Errorf("AAD = %s, want %s", aad, str(c.Expected["aad_ascii"]))
				}
			case c.Name == "serialize_response":
				var in struct {
					Header     json.RawMessage `json:"protected_header"`
					Key        string          `json:"encrypted_key_utf8"`
					IV         string          `json:"iv_utf8"`
					AAD        string          `json:"aad_utf8"`
					Tag        string          `json:"tag_utf8"`
					Ciphertext string          `json:"ciphertext_utf8"`
				}
				json.Unmarshal(c.Input, &in)
				var hdr map[string]json.RawMessage
				json.Unmarshal(in.Header, &hdr)
				protected, err := guestAAD(hdr)
				if err != nil {
					t.Fatal(err)
				}
				r := Response{Protected: string(protected), EncryptedKey: b64.EncodeToString([]byte(in.Key)),
					IV: b64.EncodeToString([]byte(in.IV)), AAD: in.AAD,
					Ciphertext: b64.EncodeToString([]byte(in.Ciphertext)), Tag: b64.EncodeToString([]byte(in.Tag))}
				got, _ := json.Marshal(r)
				var gotMap, wantMap map[string]string
				json.Unmarshal(got, &gotMap)
				want, _ := json.Marshal(c.Expected)
				json.Unmarshal(want, &wantMap)
				for k, w := range wantMap {
					if gotMap[k] != w {
						t.Errorf("member %s = %q, want %q", k, gotMap[k], w)
					}
				}
				if len(gotMap) != len(wantMap) {
					t.Errorf("members = %v, want %v", gotMap, wantMap)
				}
			case c.Type == "Response (JWE)":
				r, err := ParseResponse(c.Input)
				if err != nil {
					t.Fatal(err)
				}
				hdr, err := b64.DecodeString(r.Protected)
				if err != nil {
					t.Fatalf("protected: %v", err)
				}
				checks := []struct{ name, got, member string }{
					{"protected", string(hdr), "protected_decoded"},
					{"encrypted_key", decodeUTF8(t, r.EncryptedKey), "encrypted_key_utf8"},
					{"iv", decodeUTF8(t, r.IV), "iv_utf8"},
					{"ciphertext", decodeUTF8(t, r.Ciphertext), "ciphertext_utf8"},
					{"tag", decodeUTF8(t, r.Tag), "tag_utf8"},
				}
				for _, ch := range checks {
					if want := str(c.Expected[ch.member]); ch.got != want {
						t.Errorf("%s = %q, want %q", ch.name, ch.got, want)
					}
				}
				if want, ok := c.Expected["aad_bytes_utf8"]; ok && r.AAD != str(want) {
					t.Errorf("aad = %q, want %q", r.AAD, str(want))
				}
			case c.Type == "Attestation":
				a, err := ParseAttestation(c.Input)
				if err != nil {
					t.Fatal(err)
				}
				var wantKey TEEPubKey
				json.Unmarshal(c.Expected["tee-pubkey"], &wantKey)
				if a.RuntimeData.Nonce != str(c.Expected["runtime-data.nonce"]) || a.RuntimeData.TEEPubKey != wantKey {
					t.Errorf("runtime data = %+v", a.RuntimeData)
				}
				if string(a.TEEEvidence.PrimaryEvidence) != string(c.Expected["primary_evidence"]) {
					t.Errorf("primary_evidence = %s", a.TEEEvidence.PrimaryEvidence)
				}
				if a.TEEEvidence.AdditionalEvidence != str(c.Expected["additional_evidence"]) {
					t.Errorf("additional_evidence = %q", a.TEEEvidence.AdditionalEvidence)
				}
				if a.InitData != nil {
					t.Errorf("init-data = %+v, want nil", a.InitData)
				}
			case c.Type == "ErrorInformation":
				p, err := ParseProblem(401, c.Input)
				if err != nil {
					t.Fatal(err)
				}
				if p.Type != str(c.Expected["type"]) || p.Detail != str(c.Expected["detail"]) {
					t.Errorf("Problem = %+v", p)
				}
			default:
				t.Fatalf("vector type %q has no check", c.Type)
			}
		})
	}
}

func decodeUTF8(t *testing.T, s string) string {
	t.Helper()
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return string(b)
}

type jweVector struct {
	Recipient struct {
		PKCS8 string `json:"pkcs8_pem"`
		PKCS1 string `json:"pkcs1_pem"`
	} `json:"recipient_private_key"`
	TEEPubKey json.RawMessage `json:"tee_pubkey_as_sent_in_runtime_data"`
	Ephemeral struct {
		Crv string `json:"crv"`
		D   string `json:"d"`
	} `json:"ephemeral_private_key"`
	Z             string   `json:"shared_secret_z_hex"`
	OtherInfo     string   `json:"concat_kdf_otherinfo_hex"`
	KEK           string   `json:"kek_hex"`
	CEK           string   `json:"cek_hex"`
	IV            string   `json:"iv_hex"`
	Plaintext     string   `json:"plaintext_hex"`
	ProtectedJSON string   `json:"protected_header_json"`
	AAD           string   `json:"aad_ascii"`
	Body          Response `json:"response_body"`
	BodyBytes     string   `json:"response_body_bytes"`
}

func parsePKCS8(t *testing.T, p string) any {
	t.Helper()
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		t.Fatal("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestJWEVectorsEC(t *testing.T) {
	for _, name := range []string{"cloister_jwe-ecdh-es-a256kw-p256.json", "cloister_jwe-ecdh-es-a256kw-p521.json"} {
		t.Run(name, func(t *testing.T) {
			var v jweVector
			loadVector(t, name, &v)
			priv := parsePKCS8(t, v.Recipient.PKCS8)
			var key TEEPubKey
			if err := json.Unmarshal(v.TEEPubKey, &key); err != nil {
				t.Fatal(err)
			}
			curve, _, _ := curveFor(v.Ephemeral.Crv)
			d, _ := b64.DecodeString(v.Ephemeral.D)
			eph, err := curve.NewPrivateKey(d)
			if err != nil {
				t.Fatal(err)
			}

			pub, _ := key.ECDHPublicKey()
			z, _ := eph.ECDH(pub)
			if hex.EncodeToString(z) != v.Z {
				t.Errorf("Z = %x, want %s", z, v.Z)
			}
			if got := hex.EncodeToString(concatKDFOtherInfo(AlgECDHESA256KW)); got != v.OtherInfo {
				t.Errorf("Concat KDF other info = %s, want %s", got, v.OtherInfo)
			}
			if got := hex.EncodeToString(concatKDF(z, AlgECDHESA256KW)); got != v.KEK {
				t.Errorf("KEK = %s, want %s", got, v.KEK)
			}

			// Encryption with the vector's ephemeral key, CEK and IV
			// reproduces the body byte for byte.
			r, err := encrypt(key, mustHex(t, v.Plaintext), jweInputs{ephemeral: eph, cek: mustHex(t, v.CEK), iv: mustHex(t, v.IV)})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(r)
			if string(body) != v.BodyBytes {
				t.Errorf("JWE body =\n%s\nwant\n%s", body, v.BodyBytes)
			}
			hdr, _ := b64.DecodeString(r.Protected)
			if string(hdr) != v.ProtectedJSON {
				t.Errorf("protected header = %s, want %s", hdr, v.ProtectedJSON)
			}

			checkVectorDecrypts(t, priv, &v)
		})
	}
}

func TestJWEVectorRSA(t *testing.T) {
	var v jweVector
	loadVector(t, "cloister_jwe-rsa-oaep-256.json", &v)
	block, _ := pem.Decode([]byte(v.Recipient.PKCS1))
	priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	checkVectorDecrypts(t, priv, &v)

	// The content encryption is reproducible from CEK, IV and AAD.
	ciphertext, tag, err := sealA256GCM(mustHex(t, v.CEK), mustHex(t, v.IV), mustHex(t, v.Plaintext), []byte(v.Body.Protected))
	if err != nil {
		t.Fatal(err)
	}
	if b64.EncodeToString(ciphertext) != v.Body.Ciphertext || b64.EncodeToString(tag) != v.Body.Tag {
		t.Errorf("ciphertext/tag = %s/%s, want %s/%s", b64.EncodeToString(ciphertext), b64.EncodeToString(tag), v.Body.Ciphertext, v.Body.Tag)
	}
	cek, err := unwrapCEK(priv, AlgRSAOAEP256, nil, mustB64(t, v.Body.EncryptedKey))
	if err != nil || hex.EncodeToString(cek) != v.CEK {
		t.Errorf("CEK = %x, %v; want %s", cek, err, v.CEK)
	}
}

// checkVectorDecrypts checks that both this package's guest-style
// decryption and go-jose recover the plaintext of the vector's body.
func checkVectorDecrypts(t *testing.T, priv any, v *jweVector) {
	t.Helper()
	got, err := Decrypt(priv, &v.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, mustHex(t, v.Plaintext)) {
		t.Errorf("Decrypt = %q", got)
	}
	if got := decryptGoJose(t, priv, v.BodyBytes); !bytes.Equal(got, mustHex(t, v.Plaintext)) {
		t.Errorf("go-jose decryption = %q", got)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decryptGoJose(t *testing.T, priv any, body string) []byte {
	t.Helper()
	obj, err := jose.ParseEncryptedJSON(body,
		[]jose.KeyAlgorithm{jose.ECDH_ES_A256KW, jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatalf("go-jose parse: %v", err)
	}
	if k, ok := priv.(*ecdh.PrivateKey); ok {
		_ = k
		t.Fatal("go-jose needs an *ecdsa.PrivateKey")
	}
	out, err := obj.Decrypt(priv)
	if err != nil {
		t.Fatalf("go-jose decrypt: %v", err)
	}
	return out
}

// Encryptions to fresh keys decrypt with go-jose and with the guest-style
// path, for every key type the server supports.
func TestEncryptRoundTrip(t *testing.T) {
	secret := []byte("database password: correct horse battery staple")
	for _, kind := range []string{"P-256", "P-521", "RSA"} {
		t.Run(kind, func(t *testing.T) {
			priv := newTestKey(t, kind)
			key, err := PublicKeyJWK(priv)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Encrypt(key, secret)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(r)
			if got := decryptGoJose(t, priv, string(body)); !bytes.Equal(got, secret) {
				t.Errorf("go-jose decryption = %q", got)
			}
			got, err := Decrypt(priv, r)
			if err != nil || !bytes.Equal(got, secret) {
				t.Errorf("Decrypt = %q, %v", got, err)
			}
			if strings.Contains(string(body), `"aad"`) {
				t.Errorf("response carries an aad member: %s", body)
			}
		})
	}
}

func TestEncryptRejectsBadKeys(t *testing.T) {
	good := mustKeyJWK(t, "P-256")
	padded := good
	padded.X += "="
	short := good
	short.X = b64.EncodeToString(make([]byte, 31))
	rsa15 := mustKeyJWK(t, "RSA")
	rsa15.Alg = "RSA1_5"
	otherCurve := good
	otherCurve.Crv = "P-384"
	offCurve := good
	offCurve.Y = b64.EncodeToString(bytes.Repeat([]byte{1}, 32))
	for name, k := range map[string]TEEPubKey{
		"padded x": padded, "short x": short, "RSA1_5": rsa15, "P-384": otherCurve, "off curve": offCurve,
		"empty": {},
	} {
		if _, err := Encrypt(k, []byte("s")); err == nil {
			t.Errorf("%s: Encrypt succeeded", name)
		}
	}
}

func TestDecryptRejectsTampering(t *testing.T) {
	priv := newTestKey(t, "P-256")
	key, _ := PublicKeyJWK(priv)
	r, _ := Encrypt(key, []byte("secret"))
	tampered := *r
	tampered.Ciphertext = b64.EncodeToString([]byte("xxxxxx"))
	if _, err := Decrypt(priv, &tampered); err == nil {
		t.Error("Decrypt of a changed ciphertext succeeded")
	}
	other := newTestKey(t, "P-256")
	if _, err := Decrypt(other, r); err == nil {
		t.Error("Decrypt with another key succeeded")
	}
}

func newTestKey(t *testing.T, kind string) any {
	t.Helper()
	switch kind {
	case "RSA":
		return testRSAKey(t)
	}
	k, err := GenerateKey(kind)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustKeyJWK(t *testing.T, kind string) TEEPubKey {
	k, err := PublicKeyJWK(newTestKey(t, kind))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var rsaTestKey *rsa.PrivateKey

func testRSAKey(t *testing.T) *rsa.PrivateKey {
	if rsaTestKey == nil {
		var v jweVector
		loadVector(t, "cloister_jwe-rsa-oaep-256.json", &v)
		block, _ := pem.Decode([]byte(v.Recipient.PKCS1))
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		rsaTestKey = k
	}
	return rsaTestKey
}
