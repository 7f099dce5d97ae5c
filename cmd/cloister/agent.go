package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/agent"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/kbs"
	"github.com/cloister-dev/cloister/ratls"
	"github.com/cloister-dev/cloister/tee/nvgpu"
)

func init() { register(newAgentCmd) }

type agentFlags struct {
	kbsURL           string
	kbsCA            string
	kbsAllowHTTP     bool
	kbsRetryTimeout  time.Duration
	secrets          []string
	secretEnvs       []string
	secretBase       string
	listen           string
	upstream         string
	hosts            []string
	certLifetime     time.Duration
	requireChallenge bool
	restart          string
	maxRestarts      int
	backoff          time.Duration
	emulated         bool
	emulatorDir      string
	snpVMPL          string
	emulatedGPUs     int
	nvidiaGPUs       bool
	logLevel         string
	// clients are the verification flags of mutual mode, bound with a
	// "client-" prefix.
	verifyClients    bool
	challengeClients bool
	clients          verifyFlags
	clientMaxAge     time.Duration
	// clientAllowUndated accepts client certificates without an attested
	// issuance time.
	clientAllowUndated bool
	clientPolicy       string
	clientRefs         []string
}

func newAgentCmd() *cobra.Command { return agentCommand(&agentFlags{}) }

// agentCommand returns the agent command, which binds its flags to f.
func agentCommand(f *agentFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent [flags] -- COMMAND [ARG...]",
		Short: "Attest, fetch secrets and run a workload behind an RA-TLS listener",
		Long: `Run inside a TEE in front of an unmodified workload:

 1. attest to a key broker (cloister serve, or any Trustee KBS) with --kbs and
    fetch the --secret and --secret-env resources;
 2. write file secrets into a private directory on a tmpfs (mode 0700, files
    0600), whose path the workload finds in $CLOISTER_SECRETS_DIR, and put
    environment secrets into the workload's environment;
 3. start COMMAND and supervise it by --restart policy;
 4. accept RA-TLS connections on --listen, whose certificate carries this
    TEE's evidence, and forward them to the workload on the loopback address
    --upstream.

When the workload exits for good, or the agent gets SIGINT, SIGTERM, SIGHUP or
SIGQUIT, the secret files are overwritten and removed. On Linux, a reaper
process in the workload's process group also does this, and kills the
group, when the agent is killed with SIGKILL. Without TEE hardware, --emulated uses
the emulated SEV-SNP TEE; clients must then trust its development root
(written to --emulator-dir) explicitly. --emulated-gpus adds emulated NVIDIA
GPUs, whose evidence the agent sends to the key broker beside the TEE's; the
key broker must trust their two development roots and have their RIMs (in
--emulator-dir's nvidia-gpu/ subdirectory). --nvidia-gpus sends the evidence
of the machine's real NVIDIA GPUs instead, read through NVML, in a binary
built with -tags nvml, and needs a --secret: once the key broker released the
first secret, the agent sets the GPUs' ready state so that they accept CUDA
work, and a failure to set it stops the start.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAgent(cmd, *f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kbsURL, "kbs", "", "key broker URL, such as http://127.0.0.1:8080")
	fl.DurationVar(&f.kbsRetryTimeout, "kbs-retry-timeout", 2*time.Minute, "how long to keep trying while the key broker cannot be reached or responds 429, 500, 502, 503 or 504, so that the agent may start first; 0 tries once")
	fl.StringVar(&f.kbsCA, "kbs-ca", "", "PEM file of the CA certificates that sign an https key broker's certificate (default: system roots)")
	fl.BoolVar(&f.kbsAllowHTTP, "kbs-allow-http", false, kbsAllowHTTPHelp)
	fl.StringArrayVar(&f.secrets, "secret", nil, "resource repository/type/tag to write into the secret directory, optionally =FILE; repeatable")
	fl.StringArrayVar(&f.secretEnvs, "secret-env", nil, "VAR=repository/type/tag: put the resource into the workload's environment variable VAR; repeatable")
	fl.StringVar(&f.secretBase, "secret-dir", "", "tmpfs directory under which the private secret directory is created; at start, the agent also wipes the secret directories there that an agent of the same user killed with SIGKILL left behind (default: $XDG_RUNTIME_DIR or /dev/shm)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8443", "address of the RA-TLS listener; empty runs the workload without one")
	fl.StringVar(&f.upstream, "upstream", "", "loopback address the workload listens on, such as 127.0.0.1:8080")
	fl.StringArrayVar(&f.hosts, "host", nil, "DNS name or IP address to put into the certificate's subjectAltName; repeatable")
	fl.DurationVar(&f.certLifetime, "cert-lifetime", ratls.DefaultLifetime, "validity of each RA-TLS certificate; it is renewed from half its lifetime or 30m, whichever is earlier, and never served older than 1h, so that clients' --max-age (default 1h5m) accepts it")
	fl.BoolVar(&f.requireChallenge, "require-challenge", false, "close connections whose client does not ask for fresh evidence")
	fl.StringVar(&f.restart, "restart", "on-failure", "when to restart the workload: never, on-failure or always")
	fl.IntVar(&f.maxRestarts, "max-restarts", 5, "restarts before the agent gives up")
	fl.DurationVar(&f.backoff, "restart-backoff", time.Second, "first delay before a restart, doubled each time up to 30s")
	fl.BoolVar(&f.emulated, "emulated", false, "use the emulated SEV-SNP TEE (development only)")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level of the JSON log on standard error: debug, info, warn or error")
	fl.StringVar(&f.emulatorDir, "emulator-dir", "", "directory keeping the emulated TEE's development keys and root (ark.pem) across runs")
	fl.StringVar(&f.snpVMPL, "snp-vmpl", "", snpVMPLHelp)
	fl.IntVar(&f.emulatedGPUs, "emulated-gpus", 0, emulatedGPUsHelp)
	fl.BoolVar(&f.nvidiaGPUs, "nvidia-gpus", false, nvidiaGPUsHelp)
	fl.BoolVar(&f.verifyClients, "verify-clients", false, "require each client to present its own RA-TLS certificate and verify it (mutual mode)")
	fl.StringArrayVar(&f.clients.collateralPaths, "client-collateral", nil, "collateral for the clients' evidence; repeatable"+scopeHelp)
	fl.StringArrayVar(&f.clients.trustAnchors, "client-trust-anchor", nil, "root to trust explicitly for the clients' evidence, such as an emulated TEE's development root; repeatable"+scopeHelp)
	fl.BoolVar(&f.clients.allowEmulated, "client-allow-emulated", false, "accept clients in an emulated TEE (development only)")
	fl.BoolVar(&f.clients.allowDebug, "client-allow-debug", false, "accept clients in a debug TEE")
	fl.StringVar(&f.clients.measurement, "client-measurement", "", "expected launch measurement of the clients (hex), which for TDX clients is MRTD and covers only the firmware; --verify-clients needs it or --client-policy")
	fl.StringArrayVar(&f.clients.tcbStatuses, "client-tcb-status", nil, "accepted TCB status of the clients' evidence (default: UpToDate and SWHardeningNeeded; NoMatchingTcbLevel is never accepted); repeatable")
	fl.Uint32Var(&f.clients.minTCBEvaluationDataNumber, "client-min-tcb-evaluation-data-number", 0, "for the clients' evidence, the "+minTCBEvaluationDataNumberHelp)
	fl.StringVar(&f.clients.maxVMPL, "client-max-vmpl", "", "for the clients' evidence, the "+maxVMPLHelp)
	fl.BoolVar(&f.clients.allowUndeterminedTCB, "client-allow-undetermined-tcb", false, "accept clients' evidence whose TCB status cannot be determined for lack of collateral")
	fl.StringVar(&f.clients.hostData, "client-host-data", "", "expected host data of the clients (hex): SEV-SNP HOST_DATA or TDX MRCONFIGID; a shorter value is zero-padded")
	fl.StringVar(&f.clients.chipID, "client-chip-id", "", "expected chip ID of the clients (hex)")
	fl.StringVar(&f.clients.minTCB, "client-min-tcb", "", "minimum TCB components of the clients' evidence, such as bootloader=4,tee=0,snp=22,microcode=213")
	fl.StringVar(&f.clientPolicy, "client-policy", "", "Rego attestation policy (package cloister.appraisal, set deny) that the clients' claims must also pass, such as one that pins a TDX client's RTMRs")
	fl.StringArrayVar(&f.clientRefs, "client-reference-value", nil, "NAME=VALUE reference value for --client-policy, such as tdx.rtmr1=HEX; repeatable")
	fl.BoolVar(&f.challengeClients, "challenge-clients", false, "with --verify-clients, close connections whose client does not respond to the agent's challenge with fresh evidence from the TEE of its certificate, so that a stolen client certificate and key are useless without a TEE of the same identity; clients need cloister connect --attest with --challenge (the default)")
	fl.DurationVar(&f.clientMaxAge, "client-max-age", ratls.DefaultMaxAge, "oldest accepted evidence in a client's certificate; without --challenge-clients, a client that skips the challenge can use a stolen client certificate this long")
	fl.BoolVar(&f.clientAllowUndated, "client-allow-undated", false, "accept client certificates without an attested issuance time (Gramine, Open Enclave), whose age --client-max-age cannot limit, so that without --challenge-clients a stolen certificate and key stay usable until the certificate expires")
	return cmd
}

func runAgent(cmd *cobra.Command, f agentFlags, args []string) error {
	// The agent's packages log through slog.Default, so the JSON logger
	// replaces it, as serve and the workloads log.
	logger, err := jsonLogger(f.logLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(logger)

	if cmd.ArgsLenAtDash() < 0 || len(args) == 0 {
		return usageError("give the workload command after --, such as: cloister agent --upstream 127.0.0.1:8080 -- ./server")
	}
	policy, err := agent.ParseRestartPolicy(f.restart)
	if err != nil {
		return usageError("%v", err)
	}
	var secrets []agent.Secret
	fileOwner := map[string]string{}
	for _, s := range f.secrets {
		sec, err := agent.ParseSecret(s)
		if err != nil {
			return usageError("--secret: %v", err)
		}
		// Checked here, because the clash would otherwise show only after
		// the attestation, when the second file is written.
		if first, ok := fileOwner[sec.File]; ok {
			return usageError("--secret %s: file name %s is already used by --secret %s; give one of them another name with PATH=FILE", s, sec.File, first)
		}
		fileOwner[sec.File] = s
		secrets = append(secrets, sec)
	}
	for _, s := range f.secretEnvs {
		sec, err := agent.ParseSecretEnv(s)
		if err != nil {
			return usageError("%v", err)
		}
		secrets = append(secrets, sec)
	}
	if f.kbsRetryTimeout < 0 {
		return usageError("--kbs-retry-timeout %s is negative: use 0 to try the key broker once, or a duration such as 2m", f.kbsRetryTimeout)
	}
	if len(secrets) > 0 && f.kbsURL == "" {
		return usageError("--secret and --secret-env need --kbs")
	}
	if f.kbsURL != "" {
		if err := checkKBSURL(f.kbsURL, f.kbsAllowHTTP); err != nil {
			return err
		}
	}
	if err := checkEmulatedGPUs(f.emulatedGPUs, f.emulated, f.kbsURL); err != nil {
		return err
	}
	if err := checkNVIDIAGPUs(f.nvidiaGPUs, f.emulatedGPUs, f.kbsURL); err != nil {
		return err
	}
	if f.nvidiaGPUs && len(secrets) == 0 {
		return usageError("--nvidia-gpus needs --secret or --secret-env: the agent sets the GPUs' ready state only after the key broker releases a secret to an attestation that includes their evidence. Without a secret, the agent never attests")
	}
	// A certificate counts as expired one minute before its notAfter, so a
	// shorter lifetime would issue a certificate on every handshake.
	if f.certLifetime < 2*time.Minute || f.certLifetime > 24*time.Hour {
		return usageError("--cert-lifetime %s is out of range: use 2m to 24h; each certificate is renewed one minute before it expires, and after at most 1h anyway", f.certLifetime)
	}
	if f.listen != "" {
		if f.upstream == "" {
			return usageError("--upstream is required with --listen: the loopback address the workload listens on")
		}
		if err := agent.CheckLoopback(f.upstream); err != nil {
			return usageError("--upstream: %v", err)
		}
	}

	if f.challengeClients && !f.verifyClients {
		return usageError("--challenge-clients needs --verify-clients: only clients that present their own RA-TLS certificate can be challenged")
	}
	var clients *ratls.Verifier
	if f.verifyClients {
		// Any customer's VM on the same cloud has evidence that verifies,
		// so the client's code must be pinned: by its launch measurement,
		// or by a policy, which a TDX client needs for its RTMRs.
		if f.clients.measurement == "" && f.clientPolicy == "" {
			return usageError("--verify-clients without --client-measurement or --client-policy would accept a client in any TEE whose evidence verifies, whatever code it runs; pass --client-measurement HEX, or --client-policy FILE for TDX clients, whose measurement covers only the firmware")
		}
		o, err := clientVerifyOptions(f)
		if err != nil {
			return err
		}
		clients = ratls.NewVerifier(o)
	}

	vmpl, err := parseVMPL("--snp-vmpl", f.snpVMPL)
	if err != nil {
		return err
	}
	sel, err := agent.OpenAttester(agent.AttesterOptions{Emulated: f.emulated, EmulatorDir: f.emulatorDir, EmulatedGPUs: f.emulatedGPUs, SNPVMPL: vmpl})
	if err != nil {
		return &exitError{code: exitRejected, err: fmt.Errorf("%v; pass --emulated to use the emulated SEV-SNP TEE for development", err)}
	}
	for _, e := range sel.Skipped {
		slog.Warn("agent: attester failed to open", "err", e)
	}
	if sel.Emulated {
		slog.Warn("agent: EMULATED TEE: evidence is signed by a development root and proves no hardware; "+
			"a verifier trusts it only when given that root with --trust-anchor", "dev_root", sel.RootPath)
	}
	if sel.GPUs != nil {
		slog.Warn("agent: EMULATED NVIDIA GPUs: their evidence is signed by development roots and proves no hardware; "+
			"a key broker trusts it only when given both roots with --trust-anchor nvidia-gpu=FILE, and compares it with the RIMs with --collateral nvidia-gpu=DIR",
			"gpus", sel.GPUs.Emulator.GPUCount(), "dev_roots", sel.GPUs.RootPaths, "rims", sel.GPUs.RIMDir)
	}

	var devices []attest.Attester
	if sel.GPUs != nil {
		devices = append(devices, sel.GPUs.Emulator)
	}
	var gpus *nvgpu.NVMLAttester
	if f.nvidiaGPUs {
		if gpus, err = openNVIDIAGPUs(slog.Default()); err != nil {
			return err
		}
		devices = append(devices, gpus)
	}

	var source agent.SecretSource
	if f.kbsURL != "" {
		client, err := kbsClient(f, sel.Attester, devices)
		if err != nil {
			return err
		}
		source = client
		if gpus != nil {
			source = &gpuReadySource{source: client, gpus: gpus, log: slog.Default()}
		}
	}

	var ln net.Listener
	if f.listen != "" {
		if ln, err = net.Listen("tcp", f.listen); err != nil {
			return usageError("listening on %s: %v", f.listen, err)
		}
	}

	// SIGHUP and SIGQUIT would otherwise end the agent without wiping the
	// secrets or stopping the workload.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer stop()
	err = agent.Run(ctx, agent.Config{
		Attester: sel.Attester, Source: source, Secrets: secrets, RetryFor: f.kbsRetryTimeout, SecretBase: f.secretBase,
		Listener: ln, Upstream: f.upstream, RequireChallenge: f.requireChallenge, Clients: clients, RequireClientChallenge: f.challengeClients,
		Issue:    ratls.IssueOptions{Lifetime: f.certLifetime, Hosts: f.hosts},
		Workload: agent.Supervisor{Command: args, Policy: policy, MaxRestarts: f.maxRestarts, Backoff: f.backoff},
	})
	if err != nil {
		return &exitError{code: exitRejected, err: err}
	}
	return nil
}

// clientVerifyOptions turns the --client-* flags of mutual mode into the
// options that verify and appraise each client's evidence.
func clientVerifyOptions(f agentFlags) (ratls.VerifyOptions, error) {
	f.clients.output = "text"
	f.clients.prefix = "client-"
	vo, ao, err := f.clients.options()
	if err != nil {
		return ratls.VerifyOptions{}, err
	}
	if f.clientMaxAge <= 0 {
		return ratls.VerifyOptions{}, usageError("--client-max-age %s is not positive: use a duration such as 1h5m", f.clientMaxAge)
	}
	o := ratls.VerifyOptions{Attest: vo, Appraise: ao, MaxAge: f.clientMaxAge, AllowUndated: f.clientAllowUndated}
	if o.Policy, err = loadRegoPolicy("--client-policy", "--client-reference-value", f.clientPolicy, f.clientRefs, ao); err != nil {
		return ratls.VerifyOptions{}, err
	}
	return o, nil
}

// kbsClient returns the key broker client that attests with attester and
// sends the evidence of devices beside it.
func kbsClient(f agentFlags, attester attest.Attester, devices []attest.Attester) (*kbs.Client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if f.kbsCA != "" {
		pemData, err := os.ReadFile(f.kbsCA)
		if err != nil {
			return nil, usageError("--kbs-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, usageError("--kbs-ca %s contains no PEM certificate", f.kbsCA)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c := &kbs.Client{URL: f.kbsURL, Attester: attester, Devices: devices,
		HTTPClient: &http.Client{Jar: jar, Transport: transport, Timeout: time.Minute}}
	return c, nil
}

// emulatedGPUsHelp is the help text of --emulated-gpus, which the agent
// and the workloads' serve commands share.
var emulatedGPUsHelp = fmt.Sprintf("with --emulated and --kbs, also attest this many emulated NVIDIA GPUs (1 to %d) to the key broker; --emulator-dir keeps them in its nvidia-gpu/ subdirectory (development only)", nvgpu.MaxEmulatedGPUs)

// checkEmulatedGPUs checks the value gpus of --emulated-gpus against
// --emulated and --kbs, the flags it needs. The agent and the workloads'
// serve commands share it.
func checkEmulatedGPUs(gpus int, emulated bool, kbsURL string) error {
	if gpus == 0 {
		return nil
	}
	if err := checkEmulatedGPUCount(gpus); err != nil {
		return err
	}
	switch {
	case !emulated:
		return usageError("--emulated-gpus needs --emulated: the evidence of emulated GPUs goes with that of the emulated TEE")
	case kbsURL == "":
		return usageError("--emulated-gpus needs --kbs: only the key broker receives the GPUs' evidence, not the RA-TLS clients")
	}
	return nil
}

// checkEmulatedGPUCount checks the value gpus of --emulated-gpus against
// the number of GPUs the emulator supports.
func checkEmulatedGPUCount(gpus int) error {
	if gpus < 0 || gpus > nvgpu.MaxEmulatedGPUs {
		return usageError("--emulated-gpus is %d; use 1 to %d", gpus, nvgpu.MaxEmulatedGPUs)
	}
	return nil
}
