package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
)

// policyName is the character set of policy and reference value names.
var policyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// MaxPolicySize is the largest Rego module PutPolicy accepts, in bytes.
const MaxPolicySize = 1 << 20

func validatePolicyKey(kind PolicyKind, name string) error {
	if kind != PolicyAttestation && kind != PolicyResource {
		return fmt.Errorf("%w: policy kind %q, want %q or %q", ErrInvalid, kind, PolicyAttestation, PolicyResource)
	}
	if !policyName.MatchString(name) {
		return fmt.Errorf("%w: policy name %q must start with a letter or digit and contain at most 128 letters, digits, '.', '_' or '-'", ErrInvalid, name)
	}
	return nil
}

func (o *ops) PutPolicy(ctx context.Context, kind PolicyKind, name, module string) (Policy, error) {
	if err := validatePolicyKey(kind, name); err != nil {
		return Policy{}, err
	}
	if len(module) > MaxPolicySize {
		return Policy{}, fmt.Errorf("%w: policy %s is %d bytes, more than the maximum %d", ErrInvalid, name, len(module), MaxPolicySize)
	}

	sum := sha256.Sum256([]byte(module))
	p := Policy{Kind: kind, Name: name, Module: module, Digest: hex.EncodeToString(sum[:]), Created: fromMicros(micros(o.s.cfg.now()))}
	if err := o.q.QueryRowContext(ctx,
		`SELECT COALESCE(MAX(version), 0) + 1 FROM policies WHERE kind = $1 AND name = $2`, kind, name).Scan(&p.Version); err != nil {
		return Policy{}, fmt.Errorf("store: next version of policy %s/%s: %w", kind, name, err)
	}
	_, err := o.q.ExecContext(ctx,
		`INSERT INTO policies (kind, name, version, module, digest, created) VALUES ($1, $2, $3, $4, $5, $6)`,
		kind, name, p.Version, module, p.Digest, micros(p.Created))
	if isUniqueViolation(err) {
		return Policy{}, fmt.Errorf("%w: policy %s/%s version %d was written concurrently; retry", ErrConflict, kind, name, p.Version)
	}
	if err != nil {
		return Policy{}, fmt.Errorf("store: insert policy %s/%s: %w", kind, name, err)
	}
	return p, nil
}

func (o *ops) GetPolicy(ctx context.Context, kind PolicyKind, name string) (*Policy, error) {
	row := o.q.QueryRowContext(ctx,
		`SELECT kind, name, version, module, digest, created FROM policies
		 WHERE kind = $1 AND name = $2 ORDER BY version DESC LIMIT 1`, kind, name)
	p, err := scanPolicy(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s policy %s: %w", kind, name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read policy %s/%s: %w", kind, name, err)
	}
	return p, nil
}

func (o *ops) ListPolicies(ctx context.Context, kind PolicyKind) ([]Policy, error) {
	rows, err := o.q.QueryContext(ctx,
		`SELECT p.kind, p.name, p.version, p.module, p.digest, p.created FROM policies p
		 WHERE ($1 = '' OR p.kind = $1)
		   AND p.version = (SELECT MAX(version) FROM policies WHERE kind = p.kind AND name = p.name)
		 ORDER BY p.kind, p.name`, string(kind))
	if err != nil {
		return nil, fmt.Errorf("store: list policies: %w", err)
	}
	defer rows.Close()

	var list []Policy
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list policies: %w", err)
		}
		list = append(list, *p)
	}
	return list, rows.Err()
}

func (o *ops) DeletePolicy(ctx context.Context, kind PolicyKind, name string) error {
	res, err := o.q.ExecContext(ctx, `DELETE FROM policies WHERE kind = $1 AND name = $2`, kind, name)
	if err != nil {
		return fmt.Errorf("store: delete policy %s/%s: %w", kind, name, err)
	}
	return requireRows(res, string(kind)+" policy "+name)
}

type scanner interface{ Scan(dest ...any) error }

func scanPolicy(row scanner) (*Policy, error) {
	var (
		p       Policy
		kind    string
		created int64
	)
	if err := row.Scan(&kind, &p.Name, &p.Version, &p.Module, &p.Digest, &created); err != nil {
		return nil, err
	}
	p.Kind = PolicyKind(kind)
	p.Created = fromMicros(created)
	return &p, nil
}
