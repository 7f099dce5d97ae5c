-- Reject changes to audit records inside the database, so that a mistaken
-- UPDATE or DELETE fails at once. Someone who drops these triggers can still
-- change records; the hash chain is what detects that.

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only: records cannot be updated');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only: records cannot be deleted');
END;
