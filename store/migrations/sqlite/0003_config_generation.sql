-- The configuration generation is a counter that every committed change to
-- policies, reference values or secrets increments in the same transaction.
-- Replicas read it on each request to tell whether what they cached from
-- these tables is still current. Triggers, not Go code, bump it, so that
-- every write path counts: the admin API, master key rotation and a manual
-- SQL change alike.
--
-- SQLite has only row-level triggers, so a statement that changes n rows
-- adds n. Only a change of value matters to readers, not the amount.
--
-- NOTE: restoring a backup taken at a lower generation can make the counter
-- reach a value that a running replica cached with other data; restart the
-- replicas after a restore.

CREATE TABLE config_generation (
	id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	generation INTEGER NOT NULL
);
INSERT INTO config_generation (id, generation) VALUES (1, 0);

CREATE TRIGGER policies_generation_insert AFTER INSERT ON policies
BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER policies_generation_update AFTER UPDATE ON policies
BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER policies_generation_delete AFTER DELETE ON policies
BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER reference_values_generation_insert AFTER INSERT ON reference_values
BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER reference_values_generation_update AFTER UPDATE ON reference_values
BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER reference_values_generation_delete AFTER DELETE ON reference_values
BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER secrets_generation_insert AFTER INSERT ON secrets
BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER secrets_generation_update AFTER UPDATE ON secrets
BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER secrets_generation_delete AFTER DELETE ON secrets
BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
END;
