/*
 * user_query.h: the one reader of the queries users hand to the extension (userseq_train,
 * userseq_retrain, userseq_evaluate, userseq_roc_curve, userseq_confusion_matrix), so that
 * every one finds its columns by the same rule and refuses the same statements:
 *   - read only: exactly one SELECT without FOR UPDATE / SHARE and without a data-modifying
 *     WITH; anything else is SQLSTATE 0A000 and never runs;
 *   - the sequence: the column named "seq", else the only column of type userseq or bigint[];
 *   - the label (when the caller needs one): the column named "label", else the only column
 *     besides the sequence and the weight;
 *   - the weight: the column named "weight", if any.
 * The query runs through an SPI cursor with the privileges of the current user (the caller
 * switches user first where another role's query runs) and sees the statement's snapshot.
 */
#ifndef USERSEQ_USER_QUERY_H
#define USERSEQ_USER_QUERY_H

#include "postgres.h"

#include "executor/spi.h"

#include "seq/userseq_type.h"

/* rows fetched from a user's query per batch */
#define US_FETCH_ROWS	1000

typedef struct UsUserQuery
{
	const char *what;			/* "training query", "evaluation query": names it in errors */
	Portal		portal;
	TupleDesc	tupdesc;
	int			seq_col;		/* 1-based */
	bool		seq_is_array;	/* bigint[] (items only) rather than userseq */
	int			label_col;		/* 1-based, 0 = none (not asked for) */
	Oid			label_type;
	int			weight_col;		/* 1-based, 0 = none */
	Oid			weight_type;
} UsUserQuery;

/*
 * Checks and opens query (SPI must be connected) and finds its columns. label_task names the
 * task that needs a label (in the error when there is none), or is NULL when no label is read.
 */
extern void UsUserQueryOpen(UsUserQuery *q, const char *what, const char *query,
							const char *label_task);
/* Fetches the next batch into SPI_tuptable (the caller frees it); false at the end. */
extern bool UsUserQueryFetch(UsUserQuery *q);
extern void UsUserQueryClose(UsUserQuery *q);

/* The sequence of a row's seq value: the userseq itself, or a bigint[] made a userseq as its
 * cast does (items in order, unlabelled, one second apart). */
extern UserSeq *UsUserQuerySeq(const UsUserQuery *q, Datum d);

/* Types a label or weight may have, and their numeric value (boolean: 0 / 1). */
extern bool UsIsIntType(Oid t);
extern bool UsIsNumberType(Oid t);
extern int64 UsDatumInt(Datum d, Oid t);
extern double UsDatumNumber(Datum d, Oid t);

/* The userseq type of the installed extension (InvalidOid if it is missing). */
extern Oid	UsUserSeqTypeOid(void);

#endif
