-- Each audit record names the request ID of the HTTP request that caused
-- it, so that an operator can find the service's log lines for a record.
-- Existing records get the empty string, which the canonical encoding
-- leaves out, so their stored hashes still verify.
--
-- ALTER TABLE ADD COLUMN changes only the table definition: it rewrites no
-- row and runs no UPDATE trigger, so the append-only triggers of migration
-- 0002 stay in place and do not reject it.

ALTER TABLE audit_log ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
