package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cloister-dev/cloister/internal/printable"
	"github.com/cloister-dev/cloister/store"
)

func init() { register(newAuditCmd) }

func newAuditCmd() *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List and verify the hash-chained audit log, and print its head",
		Long: `List and verify the audit log. Each record stores the SHA-256 hash of its
content and of the previous record's hash, so a record changed or removed in
the database breaks the chain at that record. A record caused by an HTTP
request carries the request ID that the service returned in X-Request-Id
and wrote in its log lines. An attest record carries the ID (jti) of the
EAR token it issued. The release and deny records of requests with that
token carry it too, and their requester is token:<ID>, so
"audit ls --token-id ID" lists a release with the attestation behind it.
Records written before Cloister recorded token IDs have none. An attest
record of evidence with devices, such as GPUs, lists each device's EAR
submodule, verifier, evidence and policy digests and status: the DEVICES
column shows the submodule, verifier and status, and -o json the whole
text.`,
	}
	flags.bind(cmd)
	cmd.AddCommand(newAuditListCmd(&flags), newAuditVerifyCmd(&flags), newAuditHeadCmd(&flags))
	return cmd
}

func newAuditListCmd(flags *adminFlags) *cobra.Command {
	var q store.AuditQuery
	var action, tokenID string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List audit records in sequence order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q.Action = store.AuditAction(action)
			if cmd.Flags().Changed("token-id") {
				id, err := parseTokenID(tokenID)
				if err != nil {
					return err
				}
				q.TokenID = id
			}
			c, err := flags.client()
			if err != nil {
				return err
			}
			list, err := c.ListAudit(cmd.Context(), q)
			if err != nil {
				return err
			}
			if flags.output == "json" {
				return printJSON(cmd.OutOrStdout(), list)
			}
			tw := newTable(cmd.OutOrStdout())
			// The reason stays last, because it is the longest column.
			fmt.Fprintln(tw, "SEQ\tTIME\tACTION\tREQUESTER\tTEE\tDEVICES\tVERDICT\tRESOURCE\tTOKEN ID\tREQUEST ID\tREASON")
			for _, r := range list {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, formatTime(r.Time), r.Action,
					cell(r.Requester, maxColumnWidth), cell(r.TEE, maxColumnWidth), cell(deviceSummary(r.Devices), maxColumnWidth),
					cell(r.Verdict, maxColumnWidth),
					cell(r.Resource, maxColumnWidth), cell(r.TokenID, maxColumnWidth), cell(r.RequestID, maxColumnWidth),
					cell(r.Reason, 0))
			}
			return tw.Flush()
		},
	}
	fl := cmd.Flags()
	fl.Int64Var(&q.AfterSeq, "after", 0, "list records after this sequence number")
	fl.StringVar(&action, "action", "", "list only this action: attest, release, deny or admin")
	fl.StringVar(&tokenID, "token-id", "", "list only the records of this EAR token ID (jti): the attest record that issued the token and the release and deny records of its requests. A leading token:, as the REQUESTER column shows it, is removed")
	fl.IntVar(&q.Limit, "limit", 100, "maximum number of records (at most 1000)")
	return cmd
}

// parseTokenID returns the token ID of the --token-id value s in the form
// the service records it: the 32 lower-case hexadecimal digits of an EAR
// token's jti. A requester value such as token:9b1c... may be pasted as is.
func parseTokenID(s string) (string, error) {
	if strings.HasPrefix(s, "session:") {
		return "", usageError("--token-id %q names a session, which has no token ID; take the TOKEN ID of its attest record in audit ls", s)
	}
	id := strings.ToLower(strings.TrimPrefix(s, "token:"))
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", usageError("invalid --token-id %q: expected the 32 hexadecimal digits of a token's jti, as the TOKEN ID column and the token:ID requester show it", s)
	}
	return id, nil
}

// deviceSummary returns the devices of an attest record (see
// store.AuditRecord.Devices) as the DEVICES column shows them, such as
// "gpu0 nvidia-gpu affirming emulated". It leaves out the evidence and
// policy digests, which are too long for a table cell and which -o json
// shows, and the "status=" label. Other words, such as those of a damaged
// record, stay as they are.
func deviceSummary(devices string) string {
	if devices == "" {
		return ""
	}
	entries := strings.Split(devices, "; ")
	for i, entry := range entries {
		var shown []string
		for _, word := range strings.Split(entry, " ") {
			if strings.HasPrefix(word, "evidence=") || strings.HasPrefix(word, "policy=") {
				continue
			}
			shown = append(shown, strings.TrimPrefix(word, "status="))
		}
		entries[i] = strings.Join(shown, " ")
	}
	return strings.Join(entries, "; ")
}

// maxColumnWidth is the number of bytes that audit ls prints of a column
// before the last. A long client path would otherwise widen every row;
// -o json prints the whole value.
const maxColumnWidth = 64

// cell returns "-" for an empty column, and otherwise s cut to limit bytes
// (0 for no limit) with control characters, tabs and terminal escapes
// quoted. Requesters, paths and reasons can come from clients, and they
// must not break the table or the terminal.
func cell(s string, limit int) string {
	if s == "" {
		return "-"
	}
	return printable.Text(s, limit)
}

func newAuditVerifyCmd(flags *adminFlags) *cobra.Command {
	var (
		dataDir, databaseURL string
		checkpoints          []string
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Walk the audit chain and name the first broken record (exit 1)",
		Long: `Walk the audit chain from the first record and recompute every hash. With
--data-dir or --database-url the command reads the database directly, with
the service running or not; otherwise it asks the service's admin API.
It exits 1 and names the first broken record when the chain is broken.

The hashes use no key, so someone who can write the database can rewrite
records together with every hash after them, and the chain still verifies.
Keep the head that an earlier run printed outside the database, and pass
it with --checkpoint: the command then also exits 1 unless a record of the
chain has that hash, which proves that no record up to it has changed.
cloister serve logs the head as "audit checkpoint" lines with seq and hash,
and audit head prints it. Pass such a head as SEQ:HEX to check the one
record SEQ instead of searching the whole log for the hash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if flags.output != "text" && flags.output != "json" {
				return usageError("invalid --output %q: use text or json", flags.output)
			}
			checkpointHashes, err := parseCheckpoints(checkpoints)
			if err != nil {
				return err
			}
			var (
				v    store.AuditVerification
				list auditLister
			)
			if dataDir != "" || databaseURL != "" {
				s, err := openAuditStore(cmd, dataDir, databaseURL)
				if err != nil {
					return err
				}
				defer s.Close()
				v, err = s.VerifyAudit(cmd.Context())
				if err != nil {
					return err
				}
				list = s.ListAudit
			} else {
				client, err := flags.client()
				if err != nil {
					return err
				}
				if v, err = client.VerifyAudit(cmd.Context()); err != nil {
					return err
				}
				list = client.ListAudit
			}
			if err := reportVerification(cmd.OutOrStdout(), flags.output, v); err != nil {
				return err
			}
			return checkCheckpoints(cmd.Context(), cmd.OutOrStdout(), flags.output, list, checkpointHashes)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "verify the SQLite database in this data directory directly")
	cmd.Flags().StringVar(&databaseURL, "database-url", "", "verify this PostgreSQL database (postgres://...) directly")
	cmd.Flags().StringArrayVar(&checkpoints, "checkpoint", nil, "hash of a record that the chain must still contain, as HEX (64 hex digits) or SEQ:HEX (record SEQ must have that hash), such as a head that audit verify, audit head or an audit checkpoint log line printed; repeatable")
	return cmd
}

func newAuditHeadCmd(flags *adminFlags) *cobra.Command {
	var dataDir, databaseURL string
	cmd := &cobra.Command{
		Use:   "head",
		Short: "Print the sequence number and hash of the last audit record",
		Long: `Print the audit chain head: the sequence number and hash of the last record,
as the database's head row stores them. It reads one row and does not
verify the chain, so it is cheap enough to run from a monitor; audit verify
checks the chain. With --data-dir or --database-url the command reads the
database directly; otherwise it asks the service's admin API.

Keep the head outside the database, and pass it later to audit verify
--checkpoint SEQ:HEX: record SEQ must then still have that hash. cloister
serve logs the same head as "audit checkpoint" lines.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if flags.output != "text" && flags.output != "json" {
				return usageError("invalid --output %q: use text or json", flags.output)
			}
			var head store.AuditHead
			if dataDir != "" || databaseURL != "" {
				s, err := openAuditStore(cmd, dataDir, databaseURL)
				if err != nil {
					return err
				}
				defer s.Close()
				if head, err = s.AuditHead(cmd.Context()); err != nil {
					return err
				}
			} else {
				client, err := flags.client()
				if err != nil {
					return err
				}
				if head, err = client.AuditHead(cmd.Context()); err != nil {
					return err
				}
			}
			return reportHead(cmd.OutOrStdout(), flags.output, head)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "read the head of the SQLite database in this data directory directly")
	cmd.Flags().StringVar(&databaseURL, "database-url", "", "read the head of this PostgreSQL database (postgres://...) directly")
	return cmd
}

// reportHead prints head, and in text the --checkpoint value that checks
// it later.
func reportHead(w io.Writer, format string, head store.AuditHead) error {
	if format == "json" {
		return printJSON(w, head)
	}
	if head.Seq == 0 {
		_, err := fmt.Fprintln(w, "audit chain empty: no record to keep as a checkpoint")
		return err
	}
	_, err := fmt.Fprintf(w, "audit chain head: record %d, hash %x\ncheckpoint: %d:%x\n", head.Seq, head.Hash, head.Seq, head.Hash)
	return err
}

func openAuditStore(cmd *cobra.Command, dataDir, databaseURL string) (store.Store, error) {
	if dataDir != "" && databaseURL != "" {
		return nil, usageError("use either --data-dir or --database-url, not both")
	}
	s, err := store.Open(cmd.Context(), store.Config{DataDir: dataDir, DatabaseURL: databaseURL, SkipMigrations: true})
	if err != nil {
		return nil, usageError("%v", err)
	}
	return s, nil
}

// reportVerification prints v and returns an exit-1 error when the chain is
// broken.
func reportVerification(w io.Writer, format string, v store.AuditVerification) error {
	if format == "json" {
		if err := printJSON(w, v); err != nil {
			return err
		}
	}
	if b := v.Broken; b != nil {
		if format == "text" && b.SecretRollback {
			fmt.Fprintf(w, "audit chain intact (%d records), but the stored secrets are ROLLED BACK against record %d\n", v.Records, b.Seq)
			fmt.Fprintf(w, "  reason:   %s\n", b.Reason)
		}
		if b.SecretRollback {
			return &exitError{code: exitRejected, err: fmt.Errorf("stored secrets rolled back against audit record %d: %s", b.Seq, b.Reason)}
		}
		if format == "text" {
			fmt.Fprintf(w, "audit chain BROKEN at record %d after %d intact records\n", b.Seq, v.Records)
			fmt.Fprintf(w, "  reason:   %s\n", b.Reason)
			fmt.Fprintf(w, "  stored:   %s\n", hexOrDash(b.Stored))
			fmt.Fprintf(w, "  computed: %s\n", hexOrDash(b.Computed))
		}
		return &exitError{code: exitRejected, err: fmt.Errorf("audit chain broken at record %d: %s", b.Seq, b.Reason)}
	}
	if format == "text" {
		fmt.Fprintf(w, "audit chain intact: %d records, head %s\n", v.Records, hexOrDash(v.Head))
	}
	return nil
}

func hexOrDash(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return hex.EncodeToString(b)
}
