// Package store is the persistent state of the Cloister service: secrets
// encrypted at rest, Rego policies, reference values, KBS sessions and their
// single-use nonces, shared collateral, and a hash-chained audit log.
//
// Two implementations share one database/sql code path with small dialect
// differences: embedded SQLite (modernc.org/sqlite, pure Go, WAL with
// synchronous=FULL) in a data directory for a single node, and PostgreSQL
// (jackc/pgx/v5) for several replicas sharing one database. Open picks one
// from Config.
//
// Every state change that belongs to one request runs in one transaction
// through Store.Tx, so that, for example, a nonce consumption, the session
// update and the audit record of one attestation commit or roll back
// together.
//
// Secret values are encrypted under a per-version data key, which a master
// key wraps (see envelope.go). The master key never enters the database, so
// a copy of the database alone reveals no secret. Both seals name the path
// and the version in their additional data, so a sealed value copied into
// the row of another secret or version does not open. A database that an
// older release wrote, whose seals do not name the version, is converted
// when it is opened with the master key of every stored secret. To rotate
// the master key, open the store with the new key as Config.MasterKey and
// the old one in Config.OldMasterKeys, and call RewrapSecrets (`cloister
// secret rewrap`).
//
// The audit log is a hash chain whose head row every append locks, so
// replicas append in one order. Database triggers reject UPDATE and DELETE
// of audit records. Changes made after dropping them are found by
// VerifyAudit (`cloister audit verify`), which names the first record whose
// stored hash differs from the hash of its content, or whose sequence
// number or link does not follow its predecessor. It also finds records
// removed from the end or inserted past the chain head. It also finds a
// secret version that the log records as stored through the admin API but
// that was deleted from the secrets table without a record. Such a
// deletion rolls the secret back to an older value.
//
// NOTE: the hashes use no key, so someone who can write the database can
// remove records from the end, or rewrite every record from one on, and
// store hashes and a head that match. VerifyAudit then reports an intact
// chain. Only a head kept outside the database, such as the
// AuditVerification.Head of an earlier run with its record count, or an
// AuditHead that cloister serve logs as an "audit checkpoint" line, shows
// such a change: the record at that count must still have that hash.
package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Store is the service's storage. It is safe for concurrent use. The
// methods of Ops called on a Store run in a transaction of their own.
type Store interface {
	Ops

	// Tx runs fn in one transaction and commits it when fn returns nil.
	// Any error from fn, or a panic, rolls the transaction back. The Tx
	// must not be used after fn returns.
	Tx(ctx context.Context, fn func(tx Tx) error) error

	// AppendAuditGrouped appends rec through group commit: concurrent calls
	// are queued and committed in one transaction per batch, and each call
	// returns only after its batch committed. Use it for audit records that
	// belong to no other state change, such as a denial. Records that must
	// commit with their action go through Tx.AppendAudit instead.
	AppendAuditGrouped(ctx context.Context, rec AuditRecord) (AuditRecord, error)

	// VerifyAudit walks the audit chain from the first record to the chain
	// head as read at its start, and reports the first record whose hash
	// or link does not match. An intact chain is then compared with the
	// secrets table, and the first put record whose secret version is
	// newer than the newest stored version of its path is reported as a
	// break. A nil error with Broken set means the chain is broken or a
	// secret was rolled back. An error means the walk itself failed.
	VerifyAudit(ctx context.Context) (AuditVerification, error)

	// AuditHead returns the sequence number and hash of the last audit
	// record as the chain head row stores them, with one single-row read
	// and without verifying the chain. An empty chain returns Seq 0 and 32
	// zero bytes. The read takes no lock, so it waits for no append.
	AuditHead(ctx context.Context) (AuditHead, error)

	// UnopenableSecrets returns the latest versions of the secrets whose
	// data key is wrapped by a master key that this Store does not hold,
	// ordered by path, and the number of secrets stored. Such secrets
	// cannot be released by this service, as happens when replicas of one
	// database use different master keys.
	UnopenableSecrets(ctx context.Context) (unopenable []SecretInfo, stored int, err error)

	// RewrapSecrets wraps the data key of every secret version that is not
	// wrapped by the current master key again under the current key, in
	// one transaction with an admin audit record, and returns how many it
	// rewrapped. Values are not re-encrypted, except in a store whose
	// secrets are all in the legacy seal format (see envelope.go): those
	// are first sealed again in the versioned format under the current
	// key, and counted too. After it, old master keys can be removed from
	// Config.
	RewrapSecrets(ctx context.Context) (int, error)

	// ConfigGeneration returns a number that changes with every committed
	// change to policies, reference values or secrets, made by any
	// replica, command or SQL statement, because database triggers update
	// it in the changing transaction. Data read after the call reflects at
	// least the changes that the returned number counts, so a cache may
	// tag such data with it and serve the data while ConfigGeneration
	// returns the same number. A change after a backup is restored gets a
	// number above all earlier ones, unless the database clock went back.
	ConfigGeneration(ctx context.Context) (int64, error)

	// GetSealedSecret returns the latest version of the secret at path as
	// stored, without decrypting it, or ErrNotFound.
	GetSealedSecret(ctx context.Context, path string) (*SealedSecret, error)

	// OpenSecret decrypts sealed with the configured master keys, exactly
	// as GetSecret does, and returns an error wrapping ErrDecrypt when no
	// configured key opens it.
	OpenSecret(sealed *SealedSecret) (*Secret, error)

	// Collateral returns the cache of vendor collateral shared by replicas.
	Collateral() CollateralCache

	// Dialect returns "sqlite" or "postgres".
	Dialect() string

	// Close stops group commit and closes the database.
	Close() error
}

// Tx is one open transaction. It offers the same operations as Store.
type Tx interface {
	Ops
}

// Ops are the operations available on a Store and inside a transaction.
type Ops interface {
	// PutSecret stores value under path as a new version, encrypted with
	// a fresh data key wrapped by the current master key, and returns the
	// new version's metadata. path is a KBS resource path
	// "<repository>/<type>/<tag>" (see ValidateResourcePath).
	PutSecret(ctx context.Context, path string, value []byte) (SecretInfo, error)

	// GetSecret decrypts and returns the latest version of the secret at
	// path. It returns ErrNotFound when no version exists, and an error
	// wrapping ErrDecrypt when the master key does not match.
	GetSecret(ctx context.Context, path string) (*Secret, error)

	// ListSecrets returns the metadata of the latest version of every
	// secret whose path starts with prefix, ordered by path. Values are
	// never listed.
	ListSecrets(ctx context.Context, prefix string) ([]SecretInfo, error)

	// DeleteSecret removes every version of the secret at path. It returns
	// ErrNotFound when none exists.
	DeleteSecret(ctx context.Context, path string) error

	// PutPolicy stores module as a new version of the policy (kind, name)
	// and returns it with its version, SHA-256 digest and creation time.
	PutPolicy(ctx context.Context, kind PolicyKind, name, module string) (Policy, error)

	// GetPolicy returns the latest version of the policy (kind, name), or
	// ErrNotFound.
	GetPolicy(ctx context.Context, kind PolicyKind, name string) (*Policy, error)

	// ListPolicies returns the latest version of every policy of kind,
	// ordered by name; an empty kind lists all kinds.
	ListPolicies(ctx context.Context, kind PolicyKind) ([]Policy, error)

	// DeletePolicy removes every version of the policy (kind, name), or
	// returns ErrNotFound.
	DeletePolicy(ctx context.Context, kind PolicyKind, name string) error

	// AddReferenceValue accepts value for the reference value name until
	// rv.Expires (no expiry when zero). Adding a value that already exists
	// replaces its expiry.
	AddReferenceValue(ctx context.Context, rv ReferenceValue) (ReferenceValue, error)

	// ListReferenceValues returns the values of name, or of every name when
	// name is empty, expired ones included, ordered by name and value.
	ListReferenceValues(ctx context.Context, name string) ([]ReferenceValue, error)

	// ActiveReferenceValues returns, for each name, the values that have
	// not expired at time at. A name whose values have all expired maps to
	// an empty list. This is the input a policy evaluation reads.
	ActiveReferenceValues(ctx context.Context, at time.Time) (map[string][]string, error)

	// RemoveReferenceValue removes value from name, or every value of name
	// when value is empty. It returns ErrNotFound when nothing matched.
	RemoveReferenceValue(ctx context.Context, name, value string) error

	// CreateSession stores a new KBS session in state SessionChallenged. It
	// returns ErrConflict when the session ID or nonce exists. The session's
	// nonce needs no entry of its own (see IssueNonce): MarkAttested accepts
	// a session once, while it is challenged and unexpired, which makes the
	// nonce single-use.
	CreateSession(ctx context.Context, s Session) error

	// GetSession returns the session id, or ErrNotFound. A session past its
	// expiry is returned with an error wrapping ErrExpired, so that callers
	// cannot use it by mistake.
	GetSession(ctx context.Context, id string) (*Session, error)

	// MarkAttested moves session id from SessionChallenged to
	// SessionAttested and stores the attestation result. It returns
	// ErrNotFound, ErrExpired, or ErrConflict when the session is not in
	// SessionChallenged.
	MarkAttested(ctx context.Context, id string, a Attestation) error

	// ExpireSessions deletes sessions and nonces whose expiry is at or
	// before now and returns how many sessions it deleted.
	ExpireSessions(ctx context.Context, now time.Time) (int64, error)

	// IssueNonce stores a nonce that can be consumed once before n.Expires.
	IssueNonce(ctx context.Context, n Nonce) error

	// ConsumeNonce marks nonce used. It succeeds at most once per nonce,
	// across every replica sharing the database, because it is one
	// conditional UPDATE. It returns an error wrapping ErrNonceUsed when the
	// nonce was consumed before, ErrExpired when it expired at or before
	// now, ErrNotFound when it was never issued, and ErrInvalid when now is
	// not after 1970-01-01, because the consumption time is stored in Unix
	// microseconds with 0 for unused. The returned Nonce names
	// the session it was issued for; the caller must check that it is the
	// session presenting it.
	ConsumeNonce(ctx context.Context, nonce string, now time.Time) (*Nonce, error)

	// AppendAudit appends rec to the audit chain in this transaction and
	// returns it as stored: with Seq, PrevHash and Hash filled in, each NUL
	// byte and run of invalid UTF-8 in a text field replaced by U+FFFD, and
	// each text field cut to MaxAuditFieldSize bytes. Appends serialize on
	// the chain head, which stays locked until the transaction ends, so
	// append as the last step of a transaction.
	AppendAudit(ctx context.Context, rec AuditRecord) (AuditRecord, error)

	// ListAudit returns audit records in sequence order that match q.
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, error)
}

// CollateralCache shares fetched vendor collateral (certificates, CRLs, TCB
// information) between replicas.
type CollateralCache interface {
	// Get returns the item stored under key, or ErrNotFound.
	Get(ctx context.Context, key string) (*CollateralItem, error)

	// Put stores item, replacing any item with the same key.
	Put(ctx context.Context, item CollateralItem) error

	// List returns every item whose key starts with prefix, ordered by key,
	// without Data.
	List(ctx context.Context, prefix string) ([]CollateralItem, error)
}

// Errors returned by Store implementations, wrapped with the value involved.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrExpired   = errors.New("expired")
	ErrNonceUsed = errors.New("nonce already used")
	ErrDecrypt   = errors.New("decryption failed")
	ErrInvalid   = errors.New("invalid argument")
	// ErrForeignSecrets is returned by PutSecret when the store contains
	// secrets sealed under a master key that this Store does not have.
	ErrForeignSecrets = errors.New("secrets sealed under another master key")
)

// SecretInfo is the metadata of one version of a secret.
type SecretInfo struct {
	Path        string    `json:"path"`
	Version     int64     `json:"version"`
	Size        int       `json:"size"`
	MasterKeyID string    `json:"master_key_id"`
	Created     time.Time `json:"created"`
}

// Secret is a decrypted secret.
type Secret struct {
	SecretInfo
	Value []byte `json:"-"`
}

// PolicyKind separates the policy namespaces.
type PolicyKind string

const (
	// PolicyAttestation appraises verified evidence (claims) and produces
	// the EAR trust vector.
	PolicyAttestation PolicyKind = "attestation"
	// PolicyResource decides whether an attested TEE may receive a secret.
	PolicyResource PolicyKind = "resource"
)

// Policy is one version of a named Rego module.
type Policy struct {
	Kind    PolicyKind `json:"kind"`
	Name    string     `json:"name"`
	Version int64      `json:"version"`
	Module  string     `json:"module"`
	Digest  string     `json:"digest"` // hex SHA-256 of Module
	Created time.Time  `json:"created"`
}

// ReferenceValue is one accepted value of a named reference value, such as
// one accepted launch measurement under "snp.measurement".
type ReferenceValue struct {
	Name    string    `json:"name"`
	Value   string    `json:"value"`
	Expires time.Time `json:"expires,omitzero"` // zero: never
	Added   time.Time `json:"added"`
}

// SessionState is the state of a KBS session.
type SessionState string

const (
	SessionChallenged SessionState = "challenged"
	SessionAttested   SessionState = "attested"
)

// Session is a KBS session: created by the auth request, attested by the
// attest request, and used to release resources until it expires.
type Session struct {
	ID      string       `json:"id"`
	Nonce   string       `json:"nonce"`
	TEE     string       `json:"tee"`
	Created time.Time    `json:"created"`
	Expires time.Time    `json:"expires"`
	State   SessionState `json:"state"`
	Attestation
}

// Attestation is the result a session stores once its evidence passed
// appraisal.
type Attestation struct {
	Token        string    `json:"token,omitempty"`          // the EAR token issued
	TEEPublicKey []byte    `json:"tee_public_key,omitempty"` // JWK JSON of the TEE's key for response encryption
	ClaimsDigest string    `json:"claims_digest,omitempty"`  // hex SHA-256 of the appraised claims
	AttestedAt   time.Time `json:"attested_at,omitzero"`
}

// Nonce is a single-use challenge.
type Nonce struct {
	Value     string    `json:"value"`
	SessionID string    `json:"session_id,omitempty"` // empty when not issued for a session
	Expires   time.Time `json:"expires"`
	Used      time.Time `json:"used,omitzero"`
}

// AuditAction is the kind of event an audit record reports.
type AuditAction string

const (
	AuditAttest  AuditAction = "attest"
	AuditRelease AuditAction = "release"
	AuditDeny    AuditAction = "deny"
	AuditAdmin   AuditAction = "admin"
)

// AuditRecord is one entry of the hash-chained audit log. Hash is the
// SHA-256 of PrevHash followed by the record's canonical encoding (see
// AuditRecord.ComputeHash); the first record's PrevHash is 32 zero bytes.
// RequestID is the ID of the HTTP request that caused the record, which
// the service's log lines also carry and its response returns in
// X-Request-Id. The service generates it, unless it was configured to take
// the caller's X-Request-Id, so it links a record to log lines but is
// unique only as far as its source makes it. It is empty in records
// written before the field existed and in records that no request caused,
// such as the record that cloister secret rewrap appends.
//
// TokenID is the ID (the jti claim) of the EAR token that an attest record
// issued. In a release or deny record it is the ID of the verified token
// that the request presented, and Requester is then "token:" followed by
// the same ID. A release thus leads to the attest record that issued its
// token. TokenID is empty in other records, such as a rejected
// attestation or a request with an invalid token, and in records written
// before the field existed.
//
// Devices lists the devices whose evidence an attest record's attestation
// appraised besides the primary evidence, such as the GPUs of a composite
// attestation, one entry per EAR submodule in name order, joined by "; ":
//
//	gpu0 nvidia-gpu evidence=<hex> policy=<hex> status=affirming
//
// An entry contains the submodule name, the verifier's TEE name (the name of
// the attestation policy that appraised it), the hex SHA-256 digests of
// the device's evidence and of that policy, and the submodule's EAR
// status. Entries of emulated devices end with " emulated". It is a
// canonical text rather than JSON, because its bytes are hashed into the
// chain and need no canonical JSON form, and because audit ls shows it as
// it is. Every value repeats the submodule of the token that TokenID
// names, so the two can be compared. Devices is empty when the
// attestation had no device evidence, in other records, and in records
// written before the field existed.
//
// A replica of a version without RequestID, TokenID or Devices hashes
// records that have them differently, so upgrade every replica that
// shares a database before any of them verifies the chain.
type AuditRecord struct {
	Seq            int64       `json:"seq"`
	Time           time.Time   `json:"time"`
	Action         AuditAction `json:"action"`
	Requester      string      `json:"requester,omitempty"`
	TEE            string      `json:"tee,omitempty"`
	EvidenceDigest string      `json:"evidence_digest,omitempty"`
	PolicyDigest   string      `json:"policy_digest,omitempty"`
	Verdict        string      `json:"verdict,omitempty"`
	Resource       string      `json:"resource,omitempty"`
	Reason         string      `json:"reason,omitempty"`
	RequestID      string      `json:"request_id,omitempty"`
	TokenID        string      `json:"token_id,omitempty"`
	Devices        string      `json:"devices,omitempty"`
	PrevHash       HexBytes    `json:"prev_hash"`
	Hash           HexBytes    `json:"hash"`
}

// AuditQuery selects audit records. The zero value lists from the start.
type AuditQuery struct {
	AfterSeq int64       // only records with Seq > AfterSeq
	Action   AuditAction // only this action when not empty
	TokenID  string      // only records with this token ID when not empty
	Limit    int         // at most this many; 0 means DefaultAuditLimit
}

// DefaultAuditLimit is the page size of ListAudit when AuditQuery.Limit is 0.
const DefaultAuditLimit = 1000

// AuditVerification is the result of VerifyAudit.
type AuditVerification struct {
	Records int64       `json:"records"`        // records checked
	Head    HexBytes    `json:"head,omitempty"` // hash of the last record, empty when Broken is set
	Broken  *AuditBreak `json:"broken,omitempty"`
}

// AuditHead is the sequence number and hash of the last audit record. Kept
// outside the database, it is a checkpoint for cloister audit verify
// --checkpoint, which then requires record Seq to still have Hash.
type AuditHead struct {
	Seq  int64    `json:"seq"`
	Hash HexBytes `json:"hash"`
}

// AuditBreak names the first record whose stored hash or link does not
// match, or, with SecretRollback set, the record of a secret put whose
// version the stored secrets no longer contain although the chain is intact.
type AuditBreak struct {
	Seq            int64    `json:"seq"`
	Stored         HexBytes `json:"stored,omitempty"`
	Computed       HexBytes `json:"computed,omitempty"`
	Reason         string   `json:"reason"`
	SecretRollback bool     `json:"secret_rollback,omitempty"`
}

// CollateralItem is one cached collateral document.
type CollateralItem struct {
	Key         string    `json:"key"`
	Data        []byte    `json:"data,omitempty"`
	ContentType string    `json:"content_type"`
	FetchedAt   time.Time `json:"fetched_at"`
	NextUpdate  time.Time `json:"next_update,omitzero"`
}

// HexBytes is a byte string that encodes as lowercase hex in JSON and text,
// the usual form of hashes.
type HexBytes []byte

// MarshalText encodes b as hex.
func (b HexBytes) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(b)))
	hex.Encode(out, b)
	return out, nil
}

// UnmarshalText decodes hex into b.
func (b *HexBytes) UnmarshalText(text []byte) error {
	out := make([]byte, hex.DecodedLen(len(text)))
	if _, err := hex.Decode(out, text); err != nil {
		return fmt.Errorf("invalid hex: %w", err)
	}
	*b = out
	return nil
}
