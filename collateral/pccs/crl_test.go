package pccs

import (
	"bytes"
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/collateral"
)

func TestConvertCRLOncePerBody(t *testing.T) {
	h := &Handler{}
	der := corpusFile(t, "pck_crl.der")
	const key = "pcs/pckcrl/platform"

	first, err := h.convertCRL(key, der)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.der, der) {
		t.Error("the converted DER differs from the cached DER")
	}
	block, _ := pem.Decode(first.pem)
	if block == nil || block.Type != "X509 CRL" || !bytes.Equal(block.Bytes, der) {
		t.Error("the converted PEM is not an X509 CRL block of the cached DER")
	}

	again, err := h.convertCRL(key, bytes.Clone(der))
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Error("the same body was converted again")
	}

	pemBody := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	fromPEM, err := h.convertCRL(key, pemBody)
	if err != nil {
		t.Fatal(err)
	}
	if fromPEM == first {
		t.Error("a changed body returned the conversion of the earlier body")
	}
	if !bytes.Equal(fromPEM.der, der) {
		t.Error("the DER converted from PEM differs from the cached DER")
	}

	if _, err := h.convertCRL(key, []byte("not a CRL")); err == nil {
		t.Error("an invalid body converted")
	}
	if cached, _ := h.convertCRL(key, pemBody); cached != fromPEM {
		t.Error("an invalid body replaced the conversion of the valid one")
	}
}

// A new CRL in the cache is served at once, although the earlier one was
// converted.
func TestPCKCRLServesUpdatedBody(t *testing.T) {
	backend := collateral.DiskBackend{Dir: t.TempDir()}
	put := func(body []byte) {
		e := &collateral.Entry{Key: "pcs/pckcrl/platform", URL: "https://pcs.example.test/pckcrl", Body: body, FetchedAt: time.Now(),
			Headers: map[string]string{"SGX-PCK-CRL-Issuer-Chain": string(corpusFile(t, "pck_crl_issuer_chain.pem"))}}
		if err := backend.Put(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer((&Handler{Backend: backend}).Mux())
	t.Cleanup(srv.Close)
	url := srv.URL + "/sgx/certification/v4/pckcrl?ca=platform&encoding=der"

	pckCRL := corpusFile(t, "pck_crl.der")
	put(pckCRL)
	resp, body := get(t, url)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if !bytes.Equal(body, pckCRL) {
		t.Error("the first response is not the cached CRL")
	}

	// The Root CA CRL is the next PCK CRL here, because the endpoint
	// converts the body without checking its issuer.
	next := corpusFile(t, "root_ca_crl.der")
	put(next)
	resp, body = get(t, url)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if !bytes.Equal(body, next) {
		t.Error("the response after the update is not the new CRL")
	}
}
