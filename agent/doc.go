// Package agent runs inside a TEE in front of an unmodified workload, so
// that an existing application becomes confidential without code changes:
//
//  1. OpenAttester picks the evidence source: the first hardware attester
//     that a TEE package registered and that is present (configfs-tsm,
//     /dev/sev-guest, /dev/tdx_guest, /dev/nsm, /dev/tpmrm0), or the
//     emulated SEV-SNP TEE when the caller requests it. AttesterOptions.SNPVMPL
//     sets the VMPL at which the SEV-SNP hardware attester requests reports.
//  2. Run fetches the secrets from a key broker (a SecretSource, such as
//     kbs.Client, which attests with the same attester and adds a TDX
//     guest's CC event log to its evidence) and writes them
//     into a private directory on a tmpfs (SecretDir: the directory has
//     mode 0700 and each file mode 0600) or into the workload's environment.
//     While the key broker fails transiently (kbs.IsTransient), Run tries
//     again for up to Config.RetryFor. A fetch without a response within
//     two minutes counts as such a failure. Before it fetches any secret,
//     Run rejects two secrets with one file or one environment variable,
//     and a secret in CLOISTER_SECRETS_DIR or a variable of the reaper.
//  3. A Supervisor starts the workload command and restarts it by policy
//     (never, on-failure, always) with exponential backoff and a bound on
//     restarts.
//  4. A Proxy accepts RA-TLS connections whose certificate carries this
//     TEE's evidence (package ratls), serves the freshness challenge and
//     forwards the plaintext to the workload on a loopback address.
//
// When the workload exits for good or the agent is stopped, Run stops every
// process of the workload's process group, overwrites every file in the
// secret directory with zeros, removes it, and clears the secrets it holds
// in memory.
//
// An agent killed with SIGKILL can do none of this itself. On Linux the
// Supervisor therefore starts the workload through a reaper: the agent's
// own executable, re-executed from /proc/self/exe with an environment
// marker that this package's init function detects, as the leader of the
// workload's process group. The kernel sends the reaper SIGTERM when the
// agent dies. The reaper then kills every other process of the group,
// wipes the secret directory once no process holds its lock, and kills
// itself. While the agent lives, the reaper ignores SIGTERM, SIGINT,
// SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2, which reach it when they are sent
// to the whole group. It passes the workload's exit status or terminating
// signal through and leaves stopping and restarting to the agent.
//
// A PID namespace, whose init takes the workload's processes with it,
// would need CAP_SYS_ADMIN or a user namespace. Its first process would
// also ignore SIGTERM and every other signal without a handler except
// SIGKILL and SIGSTOP (pid_namespaces(7)), so a reaper is used instead.
//
// Processes that left the process group, for example with setsid, outlive
// a killed agent, as they outlive a stopped one. A reaper runs only while
// the workload runs, so it does not wipe the secret directory of an agent
// killed before the workload starts or during the backoff before a
// restart. On other systems than Linux, the workload outlives a killed
// agent. In these cases, and when the reaper cannot wipe the secret
// directory, the directory stays until the next agent of the same user
// with the same secret base starts and wipes it (SweepSecretDirs), or
// until its tmpfs is cleared.
package agent
