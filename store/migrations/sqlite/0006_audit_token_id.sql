-- An attest record names the ID (jti) of the EAR token that it issued,
-- and a release or deny record the ID of the verified token that its
-- request presented, so that a release leads to the attestation behind
-- it. Existing records get the empty string, which the canonical encoding
-- leaves out, so their stored hashes still verify.
--
-- ALTER TABLE ADD COLUMN changes only the table definition: it rewrites no
-- row and runs no UPDATE trigger, so the append-only triggers of migration
-- 0002 stay in place and do not reject it. The partial index serves
-- cloister audit ls --token-id and leaves out the records without a token.
-- Building it reads the table once, and no existing record has a token ID,
-- so it starts empty.

ALTER TABLE audit_log ADD COLUMN token_id TEXT NOT NULL DEFAULT '';

CREATE INDEX audit_log_token_id ON audit_log (token_id) WHERE token_id <> '';
