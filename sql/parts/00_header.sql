-- userseq extension install script, assembled by the Makefile from sql/parts/*.sql.
-- Every object is created in @extschema@ and every reference is schema-qualified, so the
-- script does not depend on the caller's search_path.

\echo Use "CREATE EXTENSION userseq" to load this file. \quit
