-- A restored backup sets the configuration generation back, and a counter
-- that then counts up again can reach a value that a running replica
-- cached with other data. Each change therefore sets the generation to at
-- least the database's current time in microseconds. A generation written
-- after a restore then exceeds every value written before it, as long as
-- the database clock does not go back.

CREATE OR REPLACE FUNCTION config_generation_increment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE config_generation
	SET generation = GREATEST(generation + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
	WHERE id = 1;
	RETURN NULL;
END
$$;
