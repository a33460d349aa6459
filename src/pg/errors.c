/*
 * errors.c: the one place where core status codes become SQLSTATEs and ereport calls.
 */
#include "userseq_pg.h"

int
UsStatusSqlState(us_status status)
{
	switch (status)
	{
		case US_OK:
			return ERRCODE_SUCCESSFUL_COMPLETION;
		case US_EINVAL:
			return ERRCODE_INVALID_PARAMETER_VALUE;
		case US_ENOMEM:
			return ERRCODE_OUT_OF_MEMORY;
		case US_ELIMIT:
			return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
		case US_EFORMAT:
		case US_EVERSION:
		case US_ETRUNCATED:
		case US_ECHECKSUM:
			return ERRCODE_INVALID_BINARY_REPRESENTATION;
		case US_ENONFINITE:
			return ERRCODE_DATA_EXCEPTION;
		case US_ERANGE:
			return ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
		case US_ECANCELED:
			return ERRCODE_QUERY_CANCELED;
		case US_EINTERNAL:
			return ERRCODE_INTERNAL_ERROR;
	}
	return ERRCODE_INTERNAL_ERROR;
}

void
UsCheckStatus(us_status status, const char *what, const char *detail)
{
	const char *hint = NULL;

	if (status == US_OK)
		return;
	if (status == US_EINTERNAL)
		elog(ERROR, "%s: %s. Please report a bug.", what, us_status_str(status));

	switch (status)
	{
		case US_ENOMEM:
			hint = "Reduce the model size, the data, or raise userseq.train_memory.";
			break;
		case US_EVERSION:
			hint = "The model was written by a different version of userseq; retrain or export it with a compatible version.";
			break;
		case US_ECHECKSUM:
		case US_ETRUNCATED:
		case US_EFORMAT:
			hint = "The bytes are not an intact userseq model.";
			break;
		case US_ENONFINITE:
			hint = "Training diverged or the input holds NaN or infinity; try a lower learning_rate or gradient clipping.";
			break;
		case US_ERANGE:
			hint = "A userseq model keeps every weight within +-1e6, which bounds every score; larger weights come from crafted bytes or a diverged training run.";
			break;
		default:
			break;
	}
	ereport(ERROR,
			(errcode(UsStatusSqlState(status)),
			 errmsg("could not %s: %s", what, us_status_str(status)),
			 detail ? errdetail("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0));
}

void
UsCheckScoreStatus(us_status status, const char *what)
{
	if (status == US_ENONFINITE)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("could not %s: the model produced a non-finite score", what),
				 errhint("The model's weights are beyond what its scores can represent; retrain it.")));
	UsCheckStatus(status, what, NULL);
}
