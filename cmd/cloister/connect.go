package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/agent"
	"github.com/cloister-dev/cloister/appraise"
	"github.com/cloister-dev/cloister/attest"
	"github.com/cloister-dev/cloister/policy"
	"github.com/cloister-dev/cloister/ratls"
)

func init() { register(newConnectCmd) }

// maxConnectBody bounds the response body that connect prints.
const maxConnectBody = 64 << 20

// peerFlags are the flags that decide whether an RA-TLS peer is trusted.
type peerFlags struct {
	verify          verifyFlags
	challenge       bool
	maxAge          time.Duration
	allowUndated    bool
	policyFile      string
	referenceValues []string
	// attest presents this machine's own RA-TLS certificate (mutual mode).
	attest      bool
	emulated    bool
	emulatorDir string
	snpVMPL     string
	// anyWorkload accepts a server without an expected measurement, host
	// data or policy.
	anyWorkload bool
	// fail turns an HTTP error status into exit status exitHTTPStatus.
	fail bool
}

// bind registers the verification flags that apply to a live peer. The
// verification time, format, nonce and report data have no flag, because
// the connection fixes them.
func (f *peerFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	v := &f.verify
	fl.StringArrayVar(&v.collateralPaths, "collateral", nil, "directory or file of collateral for the peer's evidence; repeatable"+scopeHelp)
	fl.StringArrayVar(&v.trustAnchors, "trust-anchor", nil, "root certificate or public key to trust explicitly, such as an emulated TEE's development root; repeatable"+scopeHelp)
	fl.StringVarP(&v.output, "output", "o", "text", "output format: text or json")
	fl.BoolVar(&v.allowDebug, "allow-debug", false, "accept a TEE in debug mode (its memory is readable by the host)")
	fl.BoolVar(&v.allowEmulated, "allow-emulated", false, "accept an emulated TEE (development only)")
	fl.BoolVar(&v.allowUndeterminedTCB, "allow-undetermined-tcb", false, "accept evidence whose TCB status cannot be determined for lack of collateral")
	fl.StringArrayVar(&v.tcbStatuses, "tcb-status", nil, "accepted TCB status (default: UpToDate and SWHardeningNeeded; NoMatchingTcbLevel is never accepted); repeatable")
	fl.StringVar(&v.measurement, "measurement", "", "expected launch measurement (hex)")
	fl.StringVar(&v.hostData, "host-data", "", "expected host data (hex)")
	fl.StringVar(&v.chipID, "chip-id", "", "expected chip ID (hex)")
	fl.StringVar(&v.minTCB, "min-tcb", "", "minimum TCB components, such as bootloader=4,snp=22")
	fl.Uint32Var(&v.minTCBEvaluationDataNumber, "min-tcb-evaluation-data-number", 0, minTCBEvaluationDataNumberHelp)
	fl.StringVar(&v.maxVMPL, "max-vmpl", "", maxVMPLHelp)
	fl.BoolVar(&f.challenge, "challenge", true, "require fresh evidence over a nonce and this connection (turn off only for servers that do not support it)")
	fl.DurationVar(&f.maxAge, "max-age", ratls.DefaultMaxAge, "oldest accepted certificate evidence; agents renew theirs from 30m and never serve one older than 1h, so a value below 1h rejects them part of the time")
	fl.BoolVar(&f.allowUndated, "allow-undated", false, "accept certificates without an attested issuance time (Gramine, Open Enclave)")
	fl.StringVar(&f.policyFile, "policy", "", "Rego attestation policy (package cloister.appraisal, set deny) that the server's claims must also pass")
	fl.StringArrayVar(&f.referenceValues, "reference-value", nil, "NAME=VALUE reference value for --policy, such as snp.measurement=HEX; repeatable")
	fl.BoolVar(&f.attest, "attest", false, "present an RA-TLS certificate with this machine's own evidence, for servers in mutual mode; with --challenge, also respond to the server's challenge with fresh evidence")
	fl.BoolVar(&f.emulated, "emulated", false, "with --attest, use the emulated SEV-SNP TEE (development only)")
	fl.StringVar(&f.emulatorDir, "emulator-dir", "", "with --attest, directory keeping the emulated TEE's development keys across runs")
	fl.StringVar(&f.snpVMPL, "snp-vmpl", "", "with --attest, the "+snpVMPLHelp)
	fl.BoolVar(&f.fail, "fail", false, "exit with status 3 when the verified server responds with an HTTP status of 400 or above, after printing the response")
	fl.BoolVar(&f.anyWorkload, "allow-any-workload", false, "accept the server without --measurement, --host-data or --policy, so that any code in a TEE that the trusted roots sign passes (for exploring only)")
}

// checkWorkloadIdentity rejects a verification that would accept any code:
// the trusted roots prove only that the server runs in a genuine TEE, and
// its measurement, host data or a policy tell which workload it is.
func (f *peerFlags) checkWorkloadIdentity() error {
	if f.verify.measurement != "" || f.verify.hostData != "" || f.policyFile != "" || f.anyWorkload {
		return nil
	}
	return usageError("no expected workload: pass --measurement HEX (the server's launch measurement, such as the one cloister inspect prints for its report), --host-data HEX or --policy FILE; " +
		"without one, any code in a TEE that the trusted roots sign is accepted, which --allow-any-workload permits for exploring")
}

// ownCertificates returns the client's own certificate source for
// --attest, or nil.
func (f *peerFlags) ownCertificates(ctx context.Context) (*ratls.CertSource, error) {
	if !f.attest {
		if f.emulated || f.emulatorDir != "" || f.snpVMPL != "" {
			return nil, usageError("--emulated, --emulator-dir and --snp-vmpl need --attest")
		}
		return nil, nil
	}
	vmpl, err := parseVMPL("--snp-vmpl", f.snpVMPL)
	if err != nil {
		return nil, err
	}
	sel, err := agent.OpenAttester(agent.AttesterOptions{Emulated: f.emulated, EmulatorDir: f.emulatorDir, SNPVMPL: vmpl})
	if err != nil {
		return nil, usageError("--attest: %v; pass --emulated to use the emulated SEV-SNP TEE for development", err)
	}
	if sel.Emulated && sel.RootPath == "" {
		return nil, usageError("--emulated without --emulator-dir creates a development root in memory, which no server can trust; pass --emulator-dir DIR and give DIR/ark.pem to the agent's --client-trust-anchor")
	}
	if sel.Emulated {
		slog.Warn("connect: presenting EMULATED TEE evidence, which proves no hardware; "+
			"an agent trusts it only when given that root with --client-trust-anchor and --client-allow-emulated", "dev_root", sel.RootPath)
	}
	certs, err := ratls.NewCertSource(ctx, sel.Attester, ratls.IssueOptions{Role: ratls.RoleClient})
	if err != nil {
		return nil, &exitError{code: exitRejected, err: err}
	}
	return certs, nil
}

func (f *peerFlags) verifier() (*ratls.Verifier, error) {
	if err := f.checkWorkloadIdentity(); err != nil {
		return nil, err
	}
	vo, ao, err := f.verify.options()
	if err != nil {
		return nil, err
	}
	o := ratls.VerifyOptions{Attest: vo, Appraise: ao, MaxAge: f.maxAge, AllowUndated: f.allowUndated}
	if o.Policy, err = f.regoPolicy(ao); err != nil {
		return nil, err
	}
	return ratls.NewVerifier(o), nil
}

// regoPolicy loads --policy and --reference-value into a policy callback,
// or returns nil when no policy is given.
func (f *peerFlags) regoPolicy(ao appraise.Options) (func(context.Context, *attest.Claims) (*appraise.Decision, error), error) {
	return loadRegoPolicy("--policy", "--reference-value", f.policyFile, f.referenceValues, ao)
}

// loadRegoPolicy reads the Rego attestation policy file (package
// cloister.appraisal, set deny) with its NAME=VALUE reference values, as
// given by the flags policyFlag and refFlag, and returns the appraisal it
// defines, or nil when file is empty. The policy's input.config carries the
// switches of ao that policy.Config has.
func loadRegoPolicy(policyFlag, refFlag, file string, referenceValues []string, ao appraise.Options) (func(context.Context, *attest.Claims) (*appraise.Decision, error), error) {
	refs := map[string][]string{}
	for _, rv := range referenceValues {
		name, value, ok := strings.Cut(rv, "=")
		if !ok || name == "" || value == "" {
			return nil, usageError("invalid %s %q: use NAME=VALUE, such as snp.measurement=HEX", refFlag, rv)
		}
		refs[name] = append(refs[name], value)
	}
	if file == "" {
		if len(refs) > 0 {
			return nil, usageError("%s needs %s", refFlag, policyFlag)
		}
		return nil, nil
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return nil, usageError("%s: %v", policyFlag, err)
	}
	engine := policy.NewEngine()
	m := policy.Module{Name: filepath.Base(file), Text: string(text)}
	if err := engine.Check(context.Background(), m, "deny"); err != nil {
		return nil, usageError("%s %s: %v", policyFlag, file, err)
	}
	cfg := policy.Config{AllowEmulated: ao.AllowEmulated, TCBStatuses: ao.TCBStatuses, MinTCBEvaluationDataNumber: ao.MinTCBEvaluationDataNumber, MaxVMPL: ao.MaxVMPL}
	return func(ctx context.Context, c *attest.Claims) (*appraise.Decision, error) {
		return engine.Appraise(ctx, m, c, cfg, refs)
	}, nil
}

func newConnectCmd() *cobra.Command {
	var (
		f        peerFlags
		forward  string
		saveCert string
	)
	cmd := &cobra.Command{
		Use:   "connect [flags] URL | --forward LOCAL:REMOTE",
		Short: "Open an attested TLS connection and verify the server before sending anything",
		Long: `Connect to an RA-TLS server, such as a workload behind cloister agent, and
verify its certificate's evidence, the key binding and, by default, fresh
evidence over a nonce and this connection before any request is sent.

With URL (https://host:port/path), send a GET and print the response body.
With --forward LOCAL:REMOTE (for example 127.0.0.1:9000:server:8443), accept
plain connections on the loopback address LOCAL and forward each through a
verified RA-TLS connection to REMOTE.

A rejection prints the reason and the claims that were verified. Exit status:
0 on success, 1 when the server is rejected, 2 on a usage or network error,
3 with --fail when the server responds with an HTTP status of 400 or above.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := f.verifier()
			if err != nil {
				return err
			}
			own, err := f.ownCertificates(cmd.Context())
			if err != nil {
				return err
			}
			switch {
			case forward != "" && len(args) == 0:
				return runForward(cmd, forward, v, own, f.challenge)
			case forward == "" && len(args) == 1:
				return runGet(cmd, args[0], v, own, f, saveCert)
			}
			return usageError("give either a URL or --forward LOCAL:REMOTE")
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&saveCert, "save-certificate", "", "write the server's RA-TLS certificate (PEM) to this file, also when it is rejected, for cloister verify")
	cmd.Flags().StringVar(&forward, "forward", "", "forward the loopback address LOCAL (host:port) to REMOTE (host:port) over RA-TLS")
	return cmd
}

func runGet(cmd *cobra.Command, rawURL string, v *ratls.Verifier, own *ratls.CertSource, f peerFlags, saveCert string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return usageError("invalid URL %q: use https://host:port/path", rawURL)
	}
	var peer *ratls.Conn
	cfg := ratls.ClientConfig(v, own, f.challenge, "http/1.1")
	client := &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{
			DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := ratls.DialMutual(ctx, network, addr, cfg, v, ownAttester(own), f.challenge)
				if err == nil {
					peer = conn
				}
				return conn, err
			},
			// Only the RA-TLS dial above may open a connection, so no
			// request can leave over plain TCP.
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return nil, fmt.Errorf("connect sends requests only over RA-TLS, not over plain TCP to %s", addr)
			},
			DisableKeepAlives: true,
		},
		// A redirect is printed, not followed, as curl does without -L:
		// the verified server's response is the one shown.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(u.String())
	if saveCert != "" {
		if serr := savePeerCertificate(saveCert, peer, err); serr != nil {
			return serr
		}
	}
	if err != nil {
		// The server cannot name its reason inside TLS, so the hint rests
		// on the one case where a Cloister agent closes a verified
		// connection right after the handshake.
		if own != nil && !f.challenge && errors.Is(err, io.EOF) {
			return usageError("%v: the server closed the connection after the handshake, as a cloister agent with --challenge-clients does to clients that skip its challenge; run connect without --challenge=false", err)
		}
		return connectError(cmd, f.verify.output, f.attest, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxConnectBody))
	if err != nil {
		return usageError("reading the response: %v", err)
	}

	if f.verify.output == "json" {
		out := map[string]any{"verdict": appraise.Accept, "emulated": peer.Peer.Claims.Emulated,
			"claims": peer.Peer.Claims, "binding_rule": peer.Peer.Rule, "fresh_evidence": peer.Fresh != nil,
			"client_fresh_evidence_accepted": peer.FreshAccepted, "status": resp.StatusCode, "body": string(body)}
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
		return httpStatusError(f.fail, resp)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "verified: %s%s\n", describePeer(peer), emulatedNote(peer))
	fmt.Fprintf(cmd.ErrOrStderr(), "status: %s\n", resp.Status)
	if _, err := cmd.OutOrStdout().Write(body); err != nil {
		return err
	}
	return httpStatusError(f.fail, resp)
}

// httpStatusError returns, with --fail, an error of exit status
// exitHTTPStatus for a response status of 400 or above, after the body was
// printed, so that scripts can tell a verified server's error apart.
func httpStatusError(fail bool, resp *http.Response) error {
	if !fail || resp.StatusCode < 400 {
		return nil
	}
	return &exitError{code: exitHTTPStatus, err: fmt.Errorf("the verified server responded %s (--fail)", resp.Status)}
}

// savePeerCertificate writes the server's certificate, taken from the
// verified connection or from the rejection.
func savePeerCertificate(path string, peer *ratls.Conn, err error) error {
	var cert *x509.Certificate
	var rej *ratls.RejectionError
	switch {
	case peer != nil:
		cert = peer.Peer.Certificate
	case errors.As(err, &rej) && rej.Certificate != nil:
		cert = rej.Certificate
	default:
		return nil
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if werr := os.WriteFile(path, data, 0o644); werr != nil {
		return usageError("--save-certificate: %v", werr)
	}
	return nil
}

func describePeer(c *ratls.Conn) string {
	s := c.Peer.String()
	if c.Fresh != nil {
		s += ", fresh evidence over this connection"
	}
	if c.FreshAccepted {
		s += ", and the server accepted this client's fresh evidence"
	}
	return s
}

// ownAttester returns the attester behind the client's own certificates,
// which responds to the server's challenge in mutual mode, or nil.
func ownAttester(own *ratls.CertSource) attest.Attester {
	if own == nil {
		return nil
	}
	return own.Attester()
}

func emulatedNote(c *ratls.Conn) string {
	if c.Peer.Claims.Emulated {
		return " (" + attest.EmulatedLabel + ")"
	}
	return ""
}

// connectError prints a rejection with its verified claims and returns
// exit status 1, or returns other failures as usage errors.
func connectError(cmd *cobra.Command, output string, attested bool, err error) error {
	var rej *ratls.RejectionError
	if errors.As(err, &rej) {
		if perr := printResult(cmd.OutOrStdout(), output, rej.Result); perr != nil {
			return usageError("writing output: %v", perr)
		}
		return &exitError{code: exitRejected}
	}
	if errors.Is(err, ratls.ErrChallengeRejected) {
		return &exitError{code: exitRejected, err: fmt.Errorf("%v; the server's log names the reason, such as evidence from a TEE other than the one in this client's certificate", err)}
	}
	if errors.Is(err, ratls.ErrNoChallenge) {
		return &exitError{code: exitRejected, err: fmt.Errorf("%v; pass --challenge=false to rely on the certificate's evidence alone", err)}
	}
	if ratls.IsRemoteAlert(err, "bad certificate") || ratls.IsRemoteAlert(err, "certificate required") {
		if attested {
			return &exitError{code: exitRejected, err: fmt.Errorf("%v: the server runs in mutual mode and rejected this client's certificate; "+
				"the agent's log names the reason, and its --client-trust-anchor, --client-allow-emulated, --client-measurement and --client-policy must admit this client's TEE", err)}
		}
		return usageError("%v: the server runs in mutual mode and rejected this client's certificate; run connect with --attest in a TEE that the server trusts", err)
	}
	return usageError("%v", err)
}

func runForward(cmd *cobra.Command, spec string, v *ratls.Verifier, own *ratls.CertSource, challenge bool) error {
	local, remote, err := splitForward(spec)
	if err != nil {
		return usageError("%v", err)
	}
	if err := agent.CheckLoopback(local); err != nil {
		return usageError("--forward: the local side carries plaintext: %v", err)
	}
	ln, err := net.Listen("tcp", local)
	if err != nil {
		return usageError("listening on %s: %v", local, err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	cfg := ratls.ClientConfig(v, own, challenge)
	slog.Info("connect: forwarding", "local", ln.Addr().String(), "remote", remote)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return usageError("accepting on %s: %v", local, err)
		}
		go forwardOne(ctx, conn, remote, cfg, v, ownAttester(own), challenge)
	}
}

func forwardOne(ctx context.Context, conn net.Conn, remote string, cfg *tls.Config, v *ratls.Verifier, attester attest.Attester, challenge bool) {
	defer conn.Close()
	up, err := ratls.DialMutual(ctx, "tcp", remote, cfg, v, attester, challenge)
	if err != nil {
		slog.Error("connect: server rejected or unreachable; closing the local connection", "remote", remote, "err", err)
		return
	}
	defer up.Close()
	slog.Info("connect: verified", "remote", remote, "peer", describePeer(up))
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(up, conn)
		up.CloseWrite()
		done <- struct{}{}
	}()
	go func() {
		io.Copy(conn, up)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	<-done
}

// splitForward splits LOCAL:REMOTE where both are host:port, such as
// 127.0.0.1:9000:server.example:8443 or [::1]:9000:[::1]:8443.
func splitForward(spec string) (string, string, error) {
	for i := 0; i < len(spec); i++ {
		if spec[i] != ':' {
			continue
		}
		local, remote := spec[:i], spec[i+1:]
		if _, _, err := net.SplitHostPort(local); err != nil {
			continue
		}
		if _, _, err := net.SplitHostPort(remote); err != nil {
			continue
		}
		return local, remote, nil
	}
	return "", "", fmt.Errorf("invalid --forward %q: use LOCAL:REMOTE with host:port on both sides, such as 127.0.0.1:9000:server:8443", spec)
}
