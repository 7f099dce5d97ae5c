-- A restored backup sets the configuration generation back, and a counter
-- that then counts up again can reach a value that a running replica
-- cached with other data. Each change therefore sets the generation to at
-- least the current time in microseconds (SQLite's clock has millisecond
-- resolution). A generation written after a restore then exceeds every
-- value written before it, as long as the clock does not go back.
--
-- The triggers of the watched tables still add 1. This trigger runs after
-- each of their updates and raises the result to the current time. SQLite
-- does not run a trigger again from its own statement, unless
-- recursive_triggers is on, which Cloister never sets.

CREATE TRIGGER config_generation_time AFTER UPDATE OF generation ON config_generation
WHEN NEW.generation < CAST(unixepoch('subsec') * 1000000 AS INTEGER)
BEGIN
	UPDATE config_generation SET generation = CAST(unixepoch('subsec') * 1000000 AS INTEGER) WHERE id = 1;
END;
