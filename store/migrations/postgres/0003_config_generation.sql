-- The configuration generation is a counter that every committed change to
-- policies, reference values or secrets increments in the same transaction.
-- Replicas read it on each request to tell whether what they cached from
-- these tables is still current. Triggers, not Go code, bump it, so that
-- every write path counts: the admin API, master key rotation and a manual
-- SQL change alike.
--
-- The triggers run once per statement, also for a statement that changed
-- no row, and for TRUNCATE. An extra increment only costs the replicas a
-- reload. The counter row stays locked until the changing transaction ends,
-- so concurrent configuration writes serialize on it; they are rare.
--
-- NOTE: restoring a backup taken at a lower generation can make the counter
-- reach a value that a running replica cached with other data; restart the
-- replicas after a restore.

CREATE TABLE config_generation (
	id         BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
	generation BIGINT NOT NULL
);
INSERT INTO config_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION config_generation_increment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
	RETURN NULL;
END
$$;

CREATE TRIGGER policies_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON policies
	FOR EACH STATEMENT EXECUTE FUNCTION config_generation_increment();

CREATE TRIGGER reference_values_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reference_values
	FOR EACH STATEMENT EXECUTE FUNCTION config_generation_increment();

CREATE TRIGGER secrets_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON secrets
	FOR EACH STATEMENT EXECUTE FUNCTION config_generation_increment();
