package quickstart

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/collateral"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/store"
	"github.com/cloister-dev/cloister/workload"
	"github.com/cloister-dev/cloister/workload/cleanroom"
)

// Options configure Run.
type Options struct {
	// Log receives the logs of the attestation service and the workload;
	// nil discards them.
	Log *slog.Logger
}

// resultKeyPath is the KBS resource path of the clean room's result key.
const resultKeyPath = "default/cleanroom/result-key"

// exampleRows is the number of fraud reports each bank contributes.
const exampleRows = 400

// parties are the two data owners of the example, in upload order.
var parties = []struct{ name, bank, table string }{
	{"bank-a", "A", "bank_a_fraud"},
	{"bank-b", "B", "bank_b_fraud"},
}

// cleanRoomStep is one step of the clean-room walkthrough.
type cleanRoomStep struct {
	title string
	// run performs the step and returns what it proved, one line per fact.
	run func(ctx context.Context, r *cleanRoomRun) ([]string, error)
}

// cleanRoomSteps are the six steps, in order.
var cleanRoomSteps = []cleanRoomStep{
	{"Create the TEE", stepCreateTEE},
	{"Measure and load the workload", stepLoadWorkload},
	{"Verify and appraise the evidence, release the workload's secret", stepReleaseSecret},
	{"Open the attested channel from each party", stepOpenChannel},
	{"Compute on the two parties' data", stepCompute},
	{"Return the result and destroy the keys", stepReturnResult},
}

// cleanRoomRun is the state that the steps pass on.
type cleanRoomRun struct {
	log     *slog.Logger
	service *service

	keys     map[string]crypto.Signer
	manifest []byte
	m        *cleanroom.Manifest
	digest   workload.Digest

	tee         *workload.TEE
	measurement attest.Hex
	// operatorKey is the operator's copy of the result key, with which
	// recipients check the result's mac.
	operatorKey []byte
	// workloadKey is the result key as the workload received it from the
	// key broker; the room zeroes it on Close.
	workloadKey []byte
	room        *cleanroom.Room

	addr            string
	stopWorkload    context.CancelFunc
	workloadDone    chan error
	workloadStopped bool
	clients         map[string]*cleanroom.Client
}

// Run walks through a data clean room in an emulated SEV-SNP TEE, printing
// each step and what it proved to w. It starts an attestation service on
// 127.0.0.1 with a temporary SQLite database and stops it before
// returning. It returns an error naming the first step that failed, after
// which no further step runs.
func Run(ctx context.Context, w io.Writer, o Options) (err error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	fmt.Fprintln(w, "Cloister quickstart: a data clean room in an EMULATED SEV-SNP TEE, offline")
	fmt.Fprintln(w, "EMULATED: the TEE runs in this process and its evidence is signed by a development root")
	fmt.Fprintln(w, "created for this run, so it proves the protocol, not any hardware.")
	fmt.Fprintln(w)

	r := &cleanRoomRun{log: log}
	defer func() { err = errors.Join(err, r.tearDown()) }()
	if err := r.setUp(ctx, w); err != nil {
		fmt.Fprintf(w, "   FAILED: %v\n", err)
		return fmt.Errorf("quickstart set-up failed: %w", err)
	}

	for i, step := range cleanRoomSteps {
		if err := runStep(w, i+1, step.title, func() ([]string, error) { return step.run(ctx, r) }); err != nil {
			return err
		}
	}
	fmt.Fprint(w, cleanRoomNext)
	return nil
}

// setUp starts the attestation service, and the two banks generate their
// keys and agree on the example manifest.
func (r *cleanRoomRun) setUp(ctx context.Context, w io.Writer) error {
	svc, err := startService(ctx, r.log)
	if err != nil {
		return fmt.Errorf("starting the attestation service: %w", err)
	}
	r.service = svc
	fmt.Fprintln(w, "Set-up")
	fmt.Fprintf(w, "   attestation service (cloister serve) on %s, SQLite in %s\n", svc.URL, svc.Dir)
	fmt.Fprintln(w, "   it trusts the development root of this run's TEE (--trust-anchor) and ALLOWS emulated TEEs (--allow-emulated)")

	r.keys = map[string]crypto.Signer{}
	hashes := make([]workload.Digest, len(parties))
	for i, p := range parties {
		key, _, err := workload.GenerateKey()
		if err != nil {
			return err
		}
		r.keys[p.name] = key
		if hashes[i], err = workload.KeyHash(key.Public()); err != nil {
			return err
		}
	}
	r.manifest = cleanroom.ExampleManifest(hashes[0], hashes[1])
	r.m, r.digest, err = cleanroom.ParseManifest(r.manifest)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   bank-a and bank-b generated their keys and agreed on manifest %q, sha256 %s:\n", r.m.Name, r.digest)
	fmt.Fprintf(w, "   one query over their fraud reports, results to both, groups under %d customers withheld\n", r.m.MinGroupSize)
	fmt.Fprintln(w)
	return nil
}

// tearDown stops whatever is still running and removes the data
// directory.
func (r *cleanRoomRun) tearDown() error {
	var errs []error
	if err := r.stopWorkloadServer(); err != nil {
		errs = append(errs, err)
	}
	if r.room != nil {
		errs = append(errs, r.room.Close())
	}
	clear(r.operatorKey)
	clear(r.workloadKey)
	if r.service != nil {
		errs = append(errs, r.service.stop())
	}
	return errors.Join(errs...)
}

func (r *cleanRoomRun) stopWorkloadServer() error {
	if r.stopWorkload == nil || r.workloadStopped {
		return nil
	}
	r.workloadStopped = true
	r.stopWorkload()
	return <-r.workloadDone
}

func stepCreateTEE(ctx context.Context, r *cleanRoomRun) ([]string, error) {
	measurement, err := workload.MeasureExecutable()
	if err != nil {
		return nil, err
	}
	tee, err := workload.OpenTEE(ctx, r.digest, workload.TEEOptions{Emulated: true, Measurement: measurement})
	if err != nil {
		return nil, err
	}
	r.tee = tee
	root := tee.Emulator.Root()
	r.service.anchors.Add(&collateral.Item{Kind: collateral.KindCertificate, Source: "quickstart development root", Raw: root.Raw, Certificate: root})
	return []string{
		fmt.Sprintf("EMULATED SEV-SNP guest, signed through a VCEK and ASK by the development root %q (O=%s)", root.Subject.CommonName, attest.EmulatedOrganization),
		fmt.Sprintf("HOST_DATA = manifest sha256 %s: the host fixed the agreement at launch, and the TEE signs it into every report", r.digest),
		"the workload verified its own report: HOST_DATA binds the manifest it is about to load",
		"the attestation service now trusts this development root, and nothing else emulated",
	}, nil
}

func stepLoadWorkload(ctx context.Context, r *cleanRoomRun) ([]string, error) {
	r.measurement = r.tee.Claims.Measurement
	if _, err := r.service.Admin.AddReferenceValue(ctx, store.ReferenceValue{Name: "snp.measurement", Value: r.measurement.String()}); err != nil {
		return nil, fmt.Errorf("registering the measurement through the admin API: %w", err)
	}

	r.operatorKey = make([]byte, 32)
	if _, err := rand.Read(r.operatorKey); err != nil {
		return nil, err
	}
	if _, err := r.service.Admin.PutSecret(ctx, resultKeyPath, r.operatorKey); err != nil {
		return nil, fmt.Errorf("storing the result key through the admin API: %w", err)
	}

	room, err := cleanroom.NewRoom(ctx, r.m, r.digest, cleanroom.Options{Log: r.log})
	if err != nil {
		return nil, err
	}
	r.room = room
	return []string{
		fmt.Sprintf("launch MEASUREMENT (SHA-384 of this executable, standing in for the TEE image): %s", r.measurement),
		"the operator registered it as reference value snp.measurement through the admin API",
		fmt.Sprintf("the operator stored the clean room's result key (32 random bytes, not printed) as secret %s through the admin API", resultKeyPath),
		"the workload loaded the manifest and compiled its query against the empty tables",
	}, nil
}

func stepReleaseSecret(ctx context.Context, r *cleanRoomRun) ([]string, error) {
	strict := appraise.Appraise(r.tee.Claims, appraise.Options{Measurement: r.measurement})
	if strict.Accepted {
		return nil, errors.New("the strict default appraisal accepted emulated evidence")
	}

	client := &kbs.Client{URL: r.service.URL, Attester: r.tee.Attester}
	key, err := client.Resource(ctx, resultKeyPath)
	if err != nil {
		return nil, fmt.Errorf("fetching the result key through the KBS protocol: %w", err)
	}
	r.workloadKey = key
	if !bytes.Equal(key, r.operatorKey) {
		return nil, errors.New("the key broker released a result key that differs from the stored one")
	}
	if err := r.room.SetResultKey(key); err != nil {
		return nil, err
	}
	return []string{
		"the workload ran the KBS protocol (auth, attest, resource) against the service",
		"the service verified the report: ECDSA P-384 signature by the VCEK, VCEK -> ASK -> development root chain",
		"it appraised the claims: no debug policy, MEASUREMENT equals the reference value, emulated TEE allowed",
		"it released the result key encrypted to a key whose hash is bound in the report data, so only this TEE can read it",
		"without --allow-emulated the default appraisal rejects this evidence: " + strict.Reasons[0].Message,
	}, nil
}

func stepOpenChannel(ctx context.Context, r *cleanRoomRun) ([]string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.addr = ln.Addr().String()
	serveCtx, cancel := context.WithCancel(context.Background())
	r.stopWorkload, r.workloadDone = cancel, make(chan error, 1)
	go func() { r.workloadDone <- cleanroom.Serve(serveCtx, ln, r.tee, r.room, r.log) }()

	var proven []string
	r.clients = map[string]*cleanroom.Client{}
	for _, p := range parties {
		c, err := r.newClient(r.manifest, p.name)
		if err != nil {
			return proven, err
		}
		if _, err := c.Status(ctx); err != nil {
			return proven, fmt.Errorf("%s: %w", p.name, err)
		}
		r.clients[p.name] = c
		party, _ := r.m.Party(p.name)
		proven = append(proven, fmt.Sprintf("%s: RA-TLS to %s verified before sending anything; the workload identified %s by its key sha256 %s", p.name, r.addr, p.name, party.KeySHA256))
	}
	proven = append(proven,
		"each check passed: report signature and chain, no debug, MEASUREMENT = the agreed one, HOST_DATA = the manifest sha256",
		"each party also received fresh evidence over its own nonce and this TLS session, so the channel ends in this TEE now")

	other, err := r.rejectOtherManifest(ctx)
	if err != nil {
		return proven, err
	}
	return append(proven, other), nil
}

// rejectOtherManifest shows that a party that agreed to another manifest
// (one that releases groups of any size) is rejected by its own client.
func (r *cleanRoomRun) rejectOtherManifest(ctx context.Context) (string, error) {
	lower := bytes.Replace(r.manifest, []byte(`"min_group_size": 5`), []byte(`"min_group_size": 1`), 1)
	c, err := r.newClient(lower, "bank-a")
	if err != nil {
		return "", err
	}
	_, err = c.Status(ctx)
	if err == nil || !strings.Contains(err.Error(), r.digest.String()) {
		return "", fmt.Errorf("a party holding another manifest was not rejected for its digest: %v", err)
	}
	return "a party holding a manifest with min_group_size 1 is rejected: the workload is bound to " + r.digest.String()[:16] + "..., not to its manifest", nil
}

func (r *cleanRoomRun) newClient(manifest []byte, party string) (*cleanroom.Client, error) {
	return cleanroom.NewClient(cleanroom.ClientConfig{
		Addr: r.addr, Manifest: manifest, Party: party, Key: r.keys[party],
		Expect: workload.Expect{
			Measurement: r.measurement,
			Attest:      attest.Options{TrustAnchors: r.tee.TrustAnchors()},
			Appraise:    appraise.Options{AllowEmulated: true},
		},
	})
}

func stepCompute(ctx context.Context, r *cleanRoomRun) ([]string, error) {
	var proven []string
	for i, p := range parties {
		up, err := r.clients[p.name].Upload(ctx, p.table, bytes.NewReader(cleanroom.ExampleReports(p.bank, exampleRows)))
		if err != nil {
			return proven, fmt.Errorf("%s: %w", p.name, err)
		}
		proven = append(proven, fmt.Sprintf("%s uploaded %d fraud reports into table %s", p.name, up.Rows, up.Table))
		if i == 0 {
			_, _, err := r.clients[p.name].Result(ctx)
			var se *cleanroom.StatusError
			if !errors.As(err, &se) {
				return proven, fmt.Errorf("a result request before every upload was not rejected: %v", err)
			}
			proven = append(proven, "a result request now is rejected: "+se.Message)
		}
	}
	return append(proven,
		"the last upload ran the agreed query once, with PRAGMA query_only, in an in-memory SQLite database",
		"then both tables were dropped with PRAGMA secure_delete (pages overwritten with zeros) and the database closed"), nil
}

func stepReturnResult(ctx context.Context, r *cleanRoomRun) ([]string, error) {
	var proven []string
	var res *cleanroom.Result
	for _, p := range parties {
		got, raw, err := r.clients[p.name].Result(ctx)
		if err != nil {
			return proven, fmt.Errorf("%s: %w", p.name, err)
		}
		if err := cleanroom.VerifyResultMAC(raw, r.operatorKey); err != nil {
			return proven, fmt.Errorf("%s: %w", p.name, err)
		}
		res = got
	}
	proven = append(proven, fmt.Sprintf("both banks received %d merchants seen by both; %d groups under %d customers were withheld",
		len(res.Rows), res.Suppressed, res.MinGroupSize))
	proven = append(proven, formatResult(res)...)
	proven = append(proven, "the result's HMAC-SHA256 verified under the result key: it comes from the workload the service released the key to")

	if err := r.stopWorkloadServer(); err != nil {
		return proven, err
	}
	if err := r.room.Close(); err != nil {
		return proven, err
	}
	if !isZero(r.workloadKey) {
		return proven, errors.New("the workload's copy of the result key was not zeroed")
	}
	clear(r.operatorKey)
	if err := r.service.stop(); err != nil {
		return proven, err
	}
	r.service = nil
	return append(proven,
		"the workload stopped: its copy of the result key is zeroed, the result dropped, and its RA-TLS and KBS private keys",
		"  are released with its memory (Go cannot zero them; in a real TEE that memory dies with the guest)",
		"the attestation service stopped and its data directory, with the sealed secret, was removed"), nil
}

// formatResult lays out a result as aligned text lines.
func formatResult(res *cleanroom.Result) []string {
	lines := []string{"  " + strings.Join(res.Columns, "  ")}
	for _, row := range res.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = fmt.Sprintf("%*v", len(res.Columns[i]), v)
		}
		lines = append(lines, "  "+strings.Join(cells, "  "))
	}
	return lines
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

const cleanRoomNext = `
What this proved, all EMULATED: two parties sent data only to a TEE whose report
signature, chain, measurement and manifest (HOST_DATA) they verified themselves,
over a channel bound to fresh evidence. The TEE computed only the agreed query,
withheld small groups, returned the result to the named recipients and erased
the inputs. The key broker released the workload's key only after verifying and
appraising the same evidence. It proved nothing about hardware.

Next:
  docs/quickstart.md                       these steps, one command at a time
  docs/workloads/cleanroom.md              run the clean room with your own manifest
  cloister quickstart --basic              the shorter walkthrough: verify and appraise one report
  cloister verify --collateral DIR FILE    verify real evidence offline
`
