package collateral

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloister-dev/cloister/internal/snpabi"
)

// recordingServer is a loopback HTTP server that records the path and
// query of every request and responds with 404, so that fetches end at once.
type recordingServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string
}

func newRecordingServer(t *testing.T) *recordingServer {
	t.Helper()
	s := &recordingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.URL.RequestURI())
		s.mu.Unlock()
		http.NotFound(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *recordingServer) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.requests)
	slices.Sort(out)
	return out
}

func TestOnlineQueryValidation(t *testing.T) {
	chipID := bytes.Repeat([]byte{0x01, 0x23}, snpabi.ChipIDSize/2)
	hwid := hex.EncodeToString(chipID)
	tests := []struct {
		name string
		q    Query
		// wantErr lists substrings of the expected error: the field, the
		// value and the fix. None means the query is valid.
		wantErr []string
		// wantRequests lists the request URIs a valid query sends,
		// sorted.
		wantRequests []string
	}{
		{
			name: "KDS Milan VCEK",
			q:    Query{TEE: "snp", Product: "Milan", SigningKey: "VCEK", ChipID: chipID, ReportedTCB: 0xd918000000000004},
			wantRequests: []string{
				"/vcek/v1/Milan/" + hwid + "?blSPL=4&snpSPL=24&teeSPL=0&ucodeSPL=217",
				"/vcek/v1/Milan/cert_chain",
				"/vcek/v1/Milan/crl",
			},
		},
		{
			name: "KDS Turin VCEK",
			q:    Query{TEE: "snp", Product: "Turin", ChipID: chipID, ReportedTCB: 0x1100000000020301},
			wantRequests: []string{
				"/vcek/v1/Turin/" + hwid[:16] + "?blSPL=3&fmcSPL=1&snpSPL=0&teeSPL=2&ucodeSPL=17",
				"/vcek/v1/Turin/cert_chain",
				"/vcek/v1/Turin/crl",
			},
		},
		{
			name: "KDS VLEK without product",
			q:    Query{TEE: "snp", SigningKey: "vlek"},
			wantRequests: []string{
				"/vlek/v1/Genoa/cert_chain",
				"/vlek/v1/Genoa/crl",
				"/vlek/v1/Milan/cert_chain",
				"/vlek/v1/Milan/crl",
			},
		},
		{
			name:    "KDS unknown product",
			q:       Query{TEE: "snp", Product: "Rome"},
			wantErr: []string{`Product "Rome"`, "Milan, Genoa and Turin", "set Product to one of them"},
		},
		{
			name:    "KDS product with path",
			q:       Query{TEE: "snp", Product: "Milan/../../admin"},
			wantErr: []string{`Product "Milan/../../admin"`, "set Product"},
		},
		{
			name:    "KDS product in lower case",
			q:       Query{TEE: "snp", Product: "milan"},
			wantErr: []string{`Product "milan"`, "spelled so"},
		},
		{
			name:    "KDS unknown signing key",
			q:       Query{TEE: "snp", Product: "Genoa", SigningKey: "reserved value 3"},
			wantErr: []string{`SigningKey "reserved value 3"`, "set SigningKey to VCEK or VLEK"},
		},
		{
			name:    "KDS short chip ID",
			q:       Query{TEE: "snp", Product: "Genoa", ChipID: []byte{0xaa, 0xbb}},
			wantErr: []string{`ChipID "aabb"`, "64 bytes, this one is 2", "CHIP_ID field"},
		},
		{
			name:    "KDS long chip ID",
			q:       Query{TEE: "snp", Product: "Genoa", ChipID: make([]byte, snpabi.ChipIDSize+1)},
			wantErr: []string{"ChipID", "64 bytes, this one is 65"},
		},
		{
			name:    "KDS masked chip ID",
			q:       Query{TEE: "snp", Product: "Genoa", ChipID: make([]byte, snpabi.ChipIDSize)},
			wantErr: []string{"ChipID", "all-zero", "leave ChipID empty"},
		},
		{
			name: "PCS TDX",
			q:    Query{TEE: "tdx", FMSPC: "90c06f000000", PCKCA: "Platform"},
			wantRequests: []string{
				"/rootcacrl",
				"/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
				"/tdx/certification/v4/qe/identity",
				"/tdx/certification/v4/tcb?fmspc=90C06F000000",
			},
		},
		{
			name: "PCS SGX without FMSPC",
			q:    Query{TEE: "sgx"},
			wantRequests: []string{
				"/rootcacrl",
				"/sgx/certification/v4/pckcrl?ca=processor&encoding=der",
				"/sgx/certification/v4/qe/identity",
			},
		},
		{
			name:    "PCS short FMSPC",
			q:       Query{TEE: "sgx", FMSPC: "00906ED5"},
			wantErr: []string{`FMSPC "00906ED5"`, "exactly 12 hexadecimal digits", "FMSPC extension of the PCK certificate"},
		},
		{
			name:    "PCS FMSPC not hexadecimal",
			q:       Query{TEE: "sgx", FMSPC: "00906ED5000Z"},
			wantErr: []string{`FMSPC "00906ED5000Z"`, "exactly 12 hexadecimal digits"},
		},
		{
			name:    "PCS FMSPC with query",
			q:       Query{TEE: "sgx", FMSPC: "00906ED50000&ca=platform"},
			wantErr: []string{`FMSPC "00906ED50000&ca=platform"`, "exactly 12 hexadecimal digits"},
		},
		{
			name:    "PCS unknown CA",
			q:       Query{TEE: "sgx", PCKCA: "root"},
			wantErr: []string{`PCKCA "root"`, "set PCKCA to processor or platform"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRecordingServer(t)
			opts := FetcherOptions{Timeout: 5 * time.Second, Retries: -1, RequestsPerSecond: 1000, Burst: 100}
			o := &Online{
				Cache: &Cache{Backend: DiskBackend{Dir: t.TempDir()}},
				KDS:   NewKDS(srv.URL, opts),
				PCS:   NewPCS(srv.URL, srv.URL+"/rootcacrl", opts),
			}
			q := tt.q
			q.At = time.Now()

			set, err := o.Collateral(context.Background(), q)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("query accepted, want an error containing %q", tt.wantErr)
				}
				if !errors.Is(err, ErrInvalidQuery) {
					t.Errorf("error %q is not ErrInvalidQuery", err)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				if set == nil {
					t.Error("set is nil, want an empty set")
				}
				if got := srv.received(); len(got) != 0 {
					t.Errorf("invalid query sent requests %q, want none", got)
				}
				return
			}
			// Every item is absent upstream, which is not an error.
			if err != nil {
				t.Fatalf("valid query failed: %v", err)
			}
			if got := srv.received(); !slices.Equal(got, tt.wantRequests) {
				t.Errorf("requests = %q\nwant       %q", got, tt.wantRequests)
			}
		})
	}
}

func TestServiceURLInvalidBase(t *testing.T) {
	tests := map[string]string{
		"relative":   "kdsintf.amd.com",
		"with query": "https://kdsintf.amd.com/?x=1",
		"invalid":    "https://kdsintf.amd.com:port",
	}
	for name, base := range tests {
		t.Run(name, func(t *testing.T) {
			k := NewKDS(base, FetcherOptions{})
			_, err := k.requests(Query{TEE: "snp", Product: "Milan"})
			if err == nil {
				t.Fatalf("base URL %q accepted", base)
			}
			if !strings.Contains(err.Error(), "set an") && !strings.Contains(err.Error(), "set the URL") {
				t.Errorf("error %q names no fix", err)
			}
		})
	}
}
