-- userseq 0.1.0 -> 0.2.0: ALTER EXTENSION userseq UPDATE TO '0.2.0'.
-- Every SQL object that 0.2.0 adds or changes after 0.1.0 is created here as in sql/parts/;
-- the models, training_log and their sequences are kept as they are.
\echo Use "ALTER EXTENSION userseq UPDATE TO '0.2.0'" to load this file. \quit
