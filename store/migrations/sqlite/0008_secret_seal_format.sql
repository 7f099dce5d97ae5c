-- The seal format of each secret version selects the additional data of
-- its two AES-256-GCM seals (see store/envelope.go). Format 1, which every
-- existing row gets, binds a seal to the path only; format 2, which
-- PutSecret writes, binds it to the path and the version as well. The
-- store converts format 1 rows to format 2 when it is next opened with the
-- master key of every stored secret, and never releases a format 1 value.
--
-- A replica of an older release that still runs inserts without naming
-- the column, so its new rows get format 1 and are rejected on read until
-- the secret is stored again. The older release rejects this schema at its
-- next start, because migration 0008 is newer than its own.
--
-- ALTER TABLE ADD COLUMN changes only the table definition: it rewrites no
-- row and runs no UPDATE trigger, so the configuration generation does not
-- change.

ALTER TABLE secrets ADD COLUMN seal_format INTEGER NOT NULL DEFAULT 1;
