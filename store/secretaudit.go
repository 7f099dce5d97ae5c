package store

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The admin API records each secret change in an applied admin audit
// record whose resource is the secret path, with a reason that
// SecretPutReason or SecretDeleteReason builds from these prefixes.
const (
	auditSecretPutPrefix    = "put secret version "
	auditSecretDeletePrefix = "deleted secret"
)

// SecretPutReason returns the audit reason of storing version of a secret,
// followed by detail (empty, or a phrase such as " through the Trustee
// admin API"). VerifyAudit reads the version back from it.
func SecretPutReason(version int64, detail string) string {
	return auditSecretPutPrefix + strconv.FormatInt(version, 10) + detail
}

// SecretDeleteReason returns the audit reason of deleting a secret,
// followed by detail as for SecretPutReason.
func SecretDeleteReason(detail string) string {
	return auditSecretDeletePrefix + detail
}

// auditedSecret is the newest version of a secret that the audit log
// records as stored, and the record that stored it.
type auditedSecret struct {
	path    string
	version int64
	seq     int64
}

// checkSecretVersions compares the secret puts and deletions that the
// audit log records, up to its chain head, with the newest stored version
// of each secret. One statement reads both from one snapshot, in which
// every change committed together with its audit record. It returns
// a break for the first put whose version is newer than the newest stored
// version of its path, because deleting the newest versions rolls a
// secret back to an older value. Versions stored without an audit record,
// as callers of Store.PutSecret other than the admin API write them, are
// newer than the audited ones and pass.
func (s *sqlStore) checkSecretVersions(ctx context.Context) (*AuditBreak, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT 0, l.seq, l.resource, l.reason FROM audit_log l, audit_head h
		 WHERE h.id = 1 AND l.seq <= h.seq AND l.action = $1 AND l.verdict = 'applied'
		   AND (l.reason LIKE $2 OR l.reason LIKE $3)
		 UNION ALL
		 SELECT 1, MAX(version), path, '' FROM secrets GROUP BY path
		 ORDER BY 1, 2`, AuditAdmin, auditSecretPutPrefix+"%", auditSecretDeletePrefix+"%")
	if err != nil {
		return nil, fmt.Errorf("store: compare audited secret versions with the stored ones: %w", err)
	}
	defer rows.Close()

	audited := map[string]auditedSecret{}
	stored := map[string]int64{}
	for rows.Next() {
		var (
			kind         int
			number       int64
			path, reason string
		)
		if err := rows.Scan(&kind, &number, &path, &reason); err != nil {
			return nil, fmt.Errorf("store: compare audited secret versions with the stored ones: %w", err)
		}
		if kind == 1 {
			stored[path] = number
			continue
		}
		if strings.HasPrefix(reason, auditSecretDeletePrefix) {
			delete(audited, path)
		} else if version, ok := auditedPutVersion(reason); ok {
			audited[path] = auditedSecret{path: path, version: version, seq: number}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: compare audited secret versions with the stored ones: %w", err)
	}

	list := make([]auditedSecret, 0, len(audited))
	for _, a := range audited {
		list = append(list, a)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	for _, a := range list {
		newest, ok := stored[a.path]
		switch {
		case !ok:
			return &AuditBreak{Seq: a.seq, SecretRollback: true, Reason: fmt.Sprintf(
				"record %d stored secret %s version %d, but no version of it is stored and no later record deleted it: "+
					"its rows were deleted outside the admin API; store the secret again with cloister secret put",
				a.seq, a.path, a.version)}, nil
		case newest < a.version:
			return &AuditBreak{Seq: a.seq, SecretRollback: true, Reason: fmt.Sprintf(
				"record %d stored secret %s version %d, but the newest stored version is %d: "+
					"newer versions were deleted outside the admin API, which rolls the secret back; store the current value again with cloister secret put",
				a.seq, a.path, a.version, newest)}, nil
		}
	}
	return nil, nil
}

// auditedPutVersion returns the version in the reason of a secret put
// record, such as "put secret version 3 through the Trustee admin API".
// The version must be written as the admin API formats it (%d), so a
// reason whose version has a sign or a leading zero is not a put record.
func auditedPutVersion(reason string) (int64, bool) {
	rest, ok := strings.CutPrefix(reason, auditSecretPutPrefix)
	if !ok {
		return 0, false
	}
	number, _, _ := strings.Cut(rest, " ")
	version, err := strconv.ParseInt(number, 10, 64)
	if err != nil || version < 1 || strconv.FormatInt(version, 10) != number {
		return 0, false
	}
	return version, true
}
