-- An attest record lists the devices, such as GPUs, whose evidence the
-- attestation appraised besides the primary evidence, with the digests of
-- each device's evidence and policy and its EAR status. Existing records
-- get the empty string, which the canonical encoding leaves out, so their
-- stored hashes still verify.
--
-- ALTER TABLE fires no row or TRUNCATE trigger, so the append-only
-- triggers of migration 0002 stay in place and do not reject it. Since
-- PostgreSQL 11, a column added with a constant default is stored in the
-- catalog and the table is not rewritten.

ALTER TABLE audit_log ADD COLUMN devices TEXT NOT NULL DEFAULT '';
