/*
 * catalog.c: every write to @extschema@.models and @extschema@.training_log, and the model
 * lifecycle functions (deploy, rollback, drop, export, import).
 *
 * Privilege model: the tables belong to the extension's owner and users may only SELECT
 * them. The functions here check that the calling role has the privileges of the model's
 * owner role (has_privs_of_role), then run only their own fixed, schema-qualified statements
 * as the table owner (SetUserIdAndSecContext with SECURITY_LOCAL_USERID_CHANGE |
 * SECURITY_RESTRICTED_OPERATION and search_path = pg_catalog, pg_temp). On error the
 * enclosing (sub)transaction abort restores user id and GUCs, as for SECURITY DEFINER
 * functions. Training queries never run here and never run elevated.
 * This file does not train or score.
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "userseq/us_format.h"
#include "models/catalog.h"
#include "models/publish.h"
#include "userseq_pg.h"

/* pg_extension.extnamespace (get_extension_schema is not exported before PostgreSQL 16) */
static Oid
UsExtensionSchema(Oid ext)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			nsp = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(nsp))
		elog(ERROR, "could not find the schema of extension %u", ext);
	return nsp;
}

Oid
UsCatalogNamespace(void)
{
	Oid			ext = get_extension_oid("userseq", true);

	if (!OidIsValid(ext))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"userseq\" is not installed in this database")));
	return UsExtensionSchema(ext);
}

static Oid
UsCatalogRel(const char *relname)
{
	Oid			rel = get_relname_relid(relname, UsCatalogNamespace());

	if (!OidIsValid(rel))
		elog(ERROR, "userseq catalog relation \"%s\" is missing", relname);
	return rel;
}

/* "schema".relname, quoted for SQL text */
static char *
UsQualified(const char *relname)
{
	return quote_qualified_identifier(get_namespace_name(UsCatalogNamespace()), relname);
}

int64
UsCatalogNextRunId(void)
{
	return nextval_internal(UsCatalogRel("run_id_seq"), false);
}

/* ------------------------------------------------------------------ elevation */

typedef struct UsElevation
{
	Oid			save_user;
	int			save_sec;
	int			guc_level;
} UsElevation;

/* Become the owner of the catalog tables, with a safe search_path. */
static void
UsBecomeCatalogOwner(UsElevation *e)
{
	HeapTuple	tup;
	Oid			owner;
	Oid			rel = UsCatalogRel("models");

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(rel));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", rel);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	GetUserIdAndSecContext(&e->save_user, &e->save_sec);
	SetUserIdAndSecContext(owner, e->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	/* operators and functions of our statements resolve in pg_catalog only */
	e->guc_level = UsInternalSqlBegin();
}

static void
UsRestoreUser(UsElevation *e)
{
	UsInternalSqlEnd(e->guc_level);
	SetUserIdAndSecContext(e->save_user, e->save_sec);
}

/* ------------------------------------------------------------------ ownership */

/*
 * Owner role name of a model, or NULL when the name has no version. SPI must be connected.
 * fresh: read with a new snapshot (as the version lookup and the writes that follow do), as
 * needed under the catalog lock; otherwise with the statement's snapshot, which in READ
 * COMMITTED may predate a concurrent writer that committed while we waited for the lock.
 */
static char *
UsModelOwnerName(const char *name, bool fresh)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	char	   *sql = psprintf("SELECT owner::text FROM %s WHERE name = $1 LIMIT 1",
							   UsQualified("models"));
	bool		isnull;
	Datum		d;

	if (SPI_execute_with_args(sql, 1, types, args, NULL, !fresh, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the models catalog");
	if (SPI_processed == 0)
		return NULL;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return TextDatumGetCString(d);
}

static void
UsCheckOwner(Oid user, const char *owner_name, const char *name)
{
	Oid			owner = get_role_oid(owner_name, true);

	/* a model whose owner role was dropped can only be changed by a superuser */
	if (OidIsValid(owner) ? !has_privs_of_role(user, owner) : !superuser_arg(user))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for model \"%s\"", name),
				 errdetail("Model \"%s\" is owned by role \"%s\".", name, owner_name),
				 errhint("Only members of the owner role can add versions to, deploy, roll back or drop a model.")));
}

/* The check repeated under the table lock (the model may have been dropped meanwhile). */
static void
UsCheckOwnerLocked(Oid user, const char *name)
{
	char	   *owner_name = UsModelOwnerName(name, true);

	if (owner_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", name)));
	UsCheckOwner(user, owner_name, name);
}

Oid
UsCatalogCheckWrite(const char *name, bool must_exist)
{
	char	   *owner_name;
	Oid			owner;

	int			level;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	level = UsInternalSqlBegin();
	owner_name = UsModelOwnerName(name, false);
	UsInternalSqlEnd(level);
	if (owner_name == NULL)
	{
		SPI_finish();
		if (must_exist)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("model \"%s\" does not exist", name)));
		return GetUserId();
	}
	owner_name = pstrdup(owner_name);
	SPI_finish();
	UsCheckOwner(GetUserId(), owner_name, name);
	owner = get_role_oid(owner_name, true);
	return OidIsValid(owner) ? owner : GetUserId();
}

/* The rows of name as seen by snapshot, as text (their ctids: any write changes them). */
static char *
UsNameRows(const char *name, Snapshot snapshot)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	char	   *sql = psprintf("SELECT array_agg(ctid ORDER BY ctid)::text FROM %s WHERE name = $1",
							   UsQualified("models"));
	SPIPlanPtr	plan = SPI_prepare(sql, 1, types);
	bool		isnull;
	Datum		d;

	if (plan == NULL ||
		SPI_execute_snapshot(plan, args, NULL, snapshot, InvalidSnapshot, true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the models catalog");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? "" : TextDatumGetCString(d);
}

/*
 * Locks the models table against concurrent writers (readers are not blocked) and makes
 * sure the reads that follow see every committed write to name: once we hold the lock no
 * writer is in progress, so a fresh snapshot (READ COMMITTED) sees them all. In REPEATABLE
 * READ and SERIALIZABLE the transaction snapshot may predate a writer that committed while
 * we waited; then the owner check and the version number could be decided on stale rows,
 * so that is a serialization failure (retry the transaction).
 */
static void
UsLockModels(const char *name)
{
	char	   *sql = psprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", UsQualified("models"));

	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not lock the models catalog");
	if (IsolationUsesXactSnapshot() &&
		strcmp(UsNameRows(name, GetTransactionSnapshot()), UsNameRows(name, GetLatestSnapshot())) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to a concurrent change of model \"%s\"", name),
				 errhint("Retry the transaction.")));
}

/*
 * Prologue of every write to an existing model: ownership check as the caller, SPI, then
 * the table owner's identity, the lock and the check again under the lock. The caller ends
 * with UsRestoreUser and SPI_finish.
 */
static void
UsBeginModelWrite(const char *name, UsElevation *e)
{
	(void) UsCatalogCheckWrite(name, true);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	UsBecomeCatalogOwner(e);
	UsLockModels(name);
	UsCheckOwnerLocked(e->save_user, name);
}

/*
 * Epilogue of every write: the caller's identity back, then (when the deployed version of
 * name may have changed) its publications refreshed, each as the role that registered it, in
 * this transaction, then SPI closed.
 */
static void
UsEndModelWrite(const char *name, UsElevation *e, bool deployment_changed)
{
	UsRestoreUser(e);
	if (deployment_changed)
		UsPublishRefresh(name, InvalidOid);
	SPI_finish();
}

/* Deployed version of name (0 if none) and its value of metrics->>metric (NaN if absent). */
static int32
UsDeployedVersion(const char *name, const char *metric, double *metric_value)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		args[2] = {CStringGetTextDatum(name), CStringGetTextDatum(metric ? metric : "")};
	char	   *sql = psprintf("SELECT version, (metrics ->> $2)::float8 FROM %s "
							   "WHERE name = $1 AND deployed", UsQualified("models"));
	bool		isnull;
	int32		v;
	Datum		d;

	if (SPI_execute_with_args(sql, 2, types, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the models catalog");
	if (metric_value)
		*metric_value = NAN;
	if (SPI_processed == 0)
		return 0;
	v = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (metric_value && !isnull)
		*metric_value = DatumGetFloat8(d);
	return v;
}

static void
UsSetDeployed(const char *name, int32 version)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		args[2] = {CStringGetTextDatum(name), Int32GetDatum(version)};
	char	   *undeploy = psprintf("UPDATE %s SET deployed = false WHERE name = $1 AND deployed",
									UsQualified("models"));
	char	   *deploy = psprintf("UPDATE %s SET deployed = true WHERE name = $1 AND version = $2",
								  UsQualified("models"));

	if (SPI_execute_with_args(undeploy, 1, types, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update the models catalog");
	if (SPI_execute_with_args(deploy, 2, types, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update the models catalog");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" has no version %d", name, version)));
}

/* ------------------------------------------------------------------ store */

void
UsCatalogStore(const UsStoreRequest *req, UsStoreResult *res)
{
	UsElevation e;
	char	   *owner_name;
	char	   *caller;
	int32		version;
	bool		deploy;
	bool		isnull;
	double		old_metric;
	int32		old_version;
	Datum		d;

	memset(res, 0, sizeof(*res));
	caller = GetUserNameFromId(GetUserId(), false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	UsBecomeCatalogOwner(&e);
	UsLockModels(req->name);

	/* checked again under the lock: the name may have been taken meanwhile */
	owner_name = UsModelOwnerName(req->name, true);
	if (owner_name)
	{
		owner_name = pstrdup(owner_name);
		UsCheckOwner(e.save_user, owner_name, req->name);
	}
	else
		owner_name = caller;

	{
		Oid			types[1] = {TEXTOID};
		Datum		args[1] = {CStringGetTextDatum(req->name)};
		char	   *sql = psprintf("SELECT coalesce(max(version), 0) + 1 FROM %s WHERE name = $1",
								   UsQualified("models"));

		if (SPI_execute_with_args(sql, 1, types, args, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the models catalog");
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		version = DatumGetInt32(d);
	}

	old_version = UsDeployedVersion(req->name, req->metric_name, &old_metric);
	deploy = req->deploy;
	if (!deploy && req->deploy_if_not_worse)
		deploy = old_version == 0 || isnan(old_metric) ||
			(!isnan(req->new_metric) &&
			 (req->higher_is_better ? req->new_metric >= old_metric : req->new_metric <= old_metric));

	{
		Oid			types[12] = {TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID,
		TEXTOID, BYTEAOID, TEXTOID, TEXTOID, BOOLOID, INT8OID};
		Datum		args[12];
		char		nulls[13] = "            ";
		char	   *sql;

		/* deployed is set afterwards by UsSetDeployed, so the unique index never sees two */
		sql = psprintf("INSERT INTO %s (name, version, task, config, query, options, "
					   "metrics, weights, owner, created_by, deployed, run_id) "
					   "VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7::jsonb, $8, $9::name, "
					   "$10::name, $11, $12)", UsQualified("models"));
		args[0] = CStringGetTextDatum(req->name);
		args[1] = Int32GetDatum(version);
		args[2] = CStringGetTextDatum(req->task);
		args[3] = CStringGetTextDatum(req->config_json);
		args[4] = req->query ? CStringGetTextDatum(req->query) : (Datum) 0;
		if (!req->query)
			nulls[4] = 'n';
		args[5] = req->options ? JsonbPGetDatum(req->options) :
			DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
		args[6] = CStringGetTextDatum(req->metrics_json);
		args[7] = PointerGetDatum(req->weights);
		args[8] = CStringGetTextDatum(owner_name);
		args[9] = CStringGetTextDatum(caller);
		args[10] = BoolGetDatum(false);
		args[11] = Int64GetDatum(req->run_id);
		if (req->run_id == 0)
			nulls[11] = 'n';
		nulls[12] = '\0';
		if (SPI_execute_with_args(sql, 12, types, args, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into the models catalog");
	}
	if (deploy)
		UsSetDeployed(req->name, version);

	if (req->n_epochs > 0)
	{
		Oid			types[10] = {INT8OID, TEXTOID, INT4OID, INT4OID, FLOAT8OID, FLOAT8OID,
		FLOAT8OID, TEXTOID, FLOAT8OID, FLOAT8OID};

		/*
		 * A first run leaves training_run and continues_run to their defaults, so a catalog
		 * still at 0.1.0 (library updated, ALTER EXTENSION not yet run) takes it; a warm start
		 * needs the 0.2.0 columns.
		 */
		bool		continues = req->continues_run != 0 || req->training_run > 1;
		int			nargs = continues ? 13 : 11;
		char	   *sql;
		Oid			types11[13];
		SPIPlanPtr	plan;

		if (continues && get_attnum(UsCatalogRel("training_log"), "continues_run") == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("a warm start needs the 0.2.0 training_log"),
					 errhint("Run ALTER EXTENSION userseq UPDATE.")));
		sql = psprintf("INSERT INTO %s (run_id, model, version, epoch, train_loss, "
					   "valid_loss, valid_metric, metric_name, learning_rate, seconds, "
					   "logged_at%s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11%s)",
					   UsQualified("training_log"),
					   continues ? ", training_run, continues_run" : "",
					   continues ? ", $12, $13" : "");

		memcpy(types11, types, sizeof(types));
		types11[10] = TIMESTAMPTZOID;
		types11[11] = INT4OID;
		types11[12] = INT8OID;
		plan = SPI_prepare(sql, nargs, types11);
		if (plan == NULL)
			elog(ERROR, "could not prepare the training_log insert");
		for (int32 i = 0; i < req->n_epochs; i++)
		{
			const UsEpochRow *r = &req->epochs[i];
			Datum		args[13];
			char		nulls[14] = "             ";

			args[0] = Int64GetDatum(req->run_id);
			args[1] = CStringGetTextDatum(req->name);
			args[2] = Int32GetDatum(version);
			args[3] = Int32GetDatum(r->epoch);
			args[4] = Float8GetDatum(r->train_loss);
			args[5] = Float8GetDatum(r->valid_loss);
			args[6] = Float8GetDatum(r->valid_metric);
			args[7] = CStringGetTextDatum(req->metric_name);
			args[8] = Float8GetDatum(r->learning_rate);
			args[9] = Float8GetDatum(r->seconds);
			args[10] = TimestampTzGetDatum(r->ended_at);
			args[11] = Int32GetDatum(req->training_run > 0 ? req->training_run : 1);
			args[12] = Int64GetDatum(req->continues_run);
			if (req->continues_run == 0)
				nulls[12] = 'n';
			if (isnan(r->valid_metric))
				nulls[6] = 'n';
			if (SPI_execute_plan(plan, args, nulls, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not insert into training_log");
		}
	}
	UsEndModelWrite(req->name, &e, deploy);

	res->version = version;
	res->deployed = deploy;
	res->old_version = old_version;
	res->old_metric = old_metric;
}

/* The trials of a userseq_tune run, written as the table owner like the models row. */
void
UsCatalogLogTrials(const char *name, int32 version, int64 tune_id, const char *metric_name,
				   const UsTrialRow *rows, int32 n)
{
	UsElevation e;
	Oid			types[12] = {INT8OID, TEXTOID, INT4OID, INT4OID, INT8OID, TEXTOID, INT4OID,
	FLOAT8OID, TEXTOID, FLOAT8OID, TEXTOID, BOOLOID};
	char	   *sql;
	SPIPlanPtr	plan;

	/* called right after UsCatalogStore, which checked the caller's rights and took the lock */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	UsBecomeCatalogOwner(&e);
	sql = psprintf("INSERT INTO %s (tune_id, model, version, trial, run_id, options, epochs, "
				   "valid_metric, metric_name, seconds, status, best) "
				   "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12)",
				   UsQualified("tuning_trials"));
	plan = SPI_prepare(sql, 12, types);
	if (plan == NULL)
		elog(ERROR, "could not prepare the tuning_trials insert");
	for (int32 i = 0; i < n; i++)
	{
		const UsTrialRow *r = &rows[i];
		Datum		args[12];
		char		nulls[13] = "            ";

		args[0] = Int64GetDatum(tune_id);
		args[1] = CStringGetTextDatum(name);
		args[2] = Int32GetDatum(version);
		args[3] = Int32GetDatum(r->trial);
		args[4] = Int64GetDatum(r->run_id);
		args[5] = CStringGetTextDatum(r->options_json);
		args[6] = Int32GetDatum(r->epochs);
		args[7] = Float8GetDatum(r->valid_metric);
		if (isnan(r->valid_metric))
			nulls[7] = 'n';
		args[8] = CStringGetTextDatum(metric_name);
		args[9] = Float8GetDatum(r->seconds);
		args[10] = CStringGetTextDatum(r->status);
		args[11] = BoolGetDatum(r->best);
		if (SPI_execute_plan(plan, args, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into tuning_trials");
	}
	UsRestoreUser(&e);
	SPI_finish();
}

/* ------------------------------------------------------------------ lifecycle */

static char *
UsNameArg(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name must not be NULL")));
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * Registers (add) or removes a publication of model into target, as the catalog owner after
 * the caller's ownership check (for a removal of a dropped model's publication: the caller must
 * have the privileges of the role that registered it); registered_by is the calling role.
 * Returns whether a row was added or removed.
 */
bool
UsCatalogSetPublication(const char *name, Oid target, bool add)
{
	UsElevation e;
	Oid			types[3] = {TEXTOID, OIDOID, OIDOID};
	Datum		args[3];
	char	   *sql;
	bool		changed;

	(void) UsCatalogCheckWrite(name, add);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	UsBecomeCatalogOwner(&e);
	UsLockModels(name);
	if (add)
		UsCheckOwnerLocked(e.save_user, name);
	args[0] = CStringGetTextDatum(name);
	args[1] = ObjectIdGetDatum(target);
	args[2] = ObjectIdGetDatum(e.save_user);
	sql = add ?
		psprintf("INSERT INTO %s (model, target, registered_by) "
				 "SELECT $1, $2::pg_catalog.regclass, r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = $3 "
				 "ON CONFLICT (model, target) DO UPDATE SET registered_by = EXCLUDED.registered_by, "
				 "registered_at = pg_catalog.now()", UsQualified("publications")) :
		psprintf("DELETE FROM %s p WHERE p.model = $1 AND p.target = $2::pg_catalog.regclass "
				 "AND (EXISTS (SELECT 1 FROM %s m WHERE m.name = $1) "
				 "     OR pg_catalog.pg_has_role($3, p.registered_by, 'USAGE'))",
				 UsQualified("publications"), UsQualified("models"));
	if (SPI_execute_with_args(sql, 3, types, args, NULL, false, 0) !=
		(add ? SPI_OK_INSERT : SPI_OK_DELETE))
		elog(ERROR, "could not write the publications catalog");
	changed = SPI_processed > 0;
	UsEndModelWrite(name, &e, false);
	return changed;
}

/* Makes version the deployed version of model (undeploying the previous one). */
PG_FUNCTION_INFO_V1(userseq_deploy);
Datum
userseq_deploy(PG_FUNCTION_ARGS)
{
	char	   *name = UsNameArg(fcinfo, 0);
	int32		version;
	UsElevation e;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("version must not be NULL")));
	version = PG_GETARG_INT32(1);
	UsBeginModelWrite(name, &e);
	UsSetDeployed(name, version);
	UsEndModelWrite(name, &e, true);
	PG_RETURN_VOID();
}

/* Deploys the highest version below the deployed one; returns it. */
PG_FUNCTION_INFO_V1(userseq_rollback);
Datum
userseq_rollback(PG_FUNCTION_ARGS)
{
	char	   *name = UsNameArg(fcinfo, 0);
	int32		current,
				previous;
	UsElevation e;

	UsBeginModelWrite(name, &e);
	current = UsDeployedVersion(name, NULL, NULL);
	if (current == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("model \"%s\" has no deployed version to roll back from", name),
				 errhint("Use userseq_deploy(model, version).")));
	{
		Oid			types[2] = {TEXTOID, INT4OID};
		Datum		args[2] = {CStringGetTextDatum(name), Int32GetDatum(current)};
		char	   *sql = psprintf("SELECT max(version) FROM %s WHERE name = $1 AND version < $2",
								   UsQualified("models"));
		bool		isnull;
		Datum		d;

		if (SPI_execute_with_args(sql, 2, types, args, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the models catalog");
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("model \"%s\" has no version older than the deployed version %d",
							name, current)));
		previous = DatumGetInt32(d);
	}
	UsSetDeployed(name, previous);
	UsEndModelWrite(name, &e, true);
	PG_RETURN_INT32(previous);
}

/* Drops one version of a model, or all of them; returns the number of versions dropped. */
PG_FUNCTION_INFO_V1(userseq_drop_model);
Datum
userseq_drop_model(PG_FUNCTION_ARGS)
{
	char	   *name = UsNameArg(fcinfo, 0);
	bool		all = PG_NARGS() < 2 || PG_ARGISNULL(1);
	int32		version = all ? 0 : PG_GETARG_INT32(1);
	UsElevation e;
	uint64		n;

	UsBeginModelWrite(name, &e);
	{
		Oid			types[2] = {TEXTOID, INT4OID};
		Datum		args[2] = {CStringGetTextDatum(name), Int32GetDatum(version)};
		char	   *sql = all ?
			psprintf("DELETE FROM %s WHERE name = $1", UsQualified("models")) :
			psprintf("DELETE FROM %s WHERE name = $1 AND version = $2", UsQualified("models"));

		if (SPI_execute_with_args(sql, all ? 1 : 2, types, args, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not delete from the models catalog");
		n = SPI_processed;
	}
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" has no version %d", name, version)));
	UsEndModelWrite(name, &e, true);
	PG_RETURN_INT32((int32) n);
}

/* The self-contained model bytes of the deployed (or given) version. */
PG_FUNCTION_INFO_V1(userseq_export);
Datum
userseq_export(PG_FUNCTION_ARGS)
{
	char	   *name = UsNameArg(fcinfo, 0);
	bool		any = PG_NARGS() < 2 || PG_ARGISNULL(1);
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		args[2] = {CStringGetTextDatum(name), Int32GetDatum(any ? 0 : PG_GETARG_INT32(1))};
	char	   *sql;
	bool		isnull;
	Datum		d;
	bytea	   *result;
	MemoryContext caller = CurrentMemoryContext;
	int			level;

	/* read with the caller's privileges, like any SELECT on the catalog */
	if (any)
		sql = psprintf("SELECT weights FROM %s WHERE name = $1 "
					   "ORDER BY deployed DESC, version DESC LIMIT 1", UsQualified("models"));
	else
		sql = psprintf("SELECT weights FROM %s WHERE name = $1 AND version = $2",
					   UsQualified("models"));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	level = UsInternalSqlBegin();
	if (SPI_execute_with_args(sql, any ? 1 : 2, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the models catalog");
	UsInternalSqlEnd(level);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 any ? errmsg("model \"%s\" does not exist", name) :
				 errmsg("model \"%s\" has no version %d", name, DatumGetInt32(args[1]))));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	{
		MemoryContext old = MemoryContextSwitchTo(caller);

		result = DatumGetByteaPCopy(d);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	PG_RETURN_BYTEA_P(result);
}

/* Model config fields as JSON, from a decoded model (imports have no training options). */
static char *
UsModelConfigJson(const us_model *m)
{
	const us_model_config *c = &m->cfg;
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"task\": \"%s\", \"embedding_dim\": %d, \"filter_widths\": [",
					 us_task_name(c->task), c->embed_dim);
	for (int i = 0; i < c->n_widths; i++)
		appendStringInfo(&buf, "%s%d", i ? ", " : "", c->widths[i]);
	appendStringInfo(&buf, "], \"num_filters\": %d, \"hidden_dim\": %d, \"dropout\": %.9g, "
					 "\"max_len\": %d, \"recent_window\": %d, \"tie_output\": %s, "
					 "\"pos_weight\": %.9g, \"n_items\": %d, \"n_behaviors\": %d, "
					 "\"n_gap_buckets\": %d, \"n_outputs\": %d}",
					 c->n_filters, c->hidden_dim, c->dropout, c->max_len, c->recent_window,
					 c->tie_output ? "true" : "false", c->pos_weight, c->n_items,
					 c->n_behaviors, c->n_gap_buckets, c->n_outputs);
	return buf.data;
}

/* Stores model bytes from userseq_export as the next version of name, owned by the caller. */
PG_FUNCTION_INFO_V1(userseq_import);
Datum
userseq_import(PG_FUNCTION_ARGS)
{
	char	   *name = UsNameArg(fcinfo, 0);
	bytea	   *bytes;
	bool		deploy = PG_ARGISNULL(2) ? true : PG_GETARG_BOOL(2);
	MemoryContext cxt;
	us_allocator alloc;
	us_model   *model;
	UsStoreRequest req;
	UsStoreResult res;
	char	   *config;
	const char *task;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model bytes must not be NULL")));
	bytes = PG_GETARG_BYTEA_P(1);
	if (strlen(name) == 0 || strlen(name) > NAMEDATALEN * 4)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model name must have 1 to %d bytes", NAMEDATALEN * 4)));
	(void) UsCatalogCheckWrite(name, false);

	cxt = AllocSetContextCreate(CurrentMemoryContext, "userseq import", ALLOCSET_DEFAULT_SIZES);
	alloc = UsContextAllocator(cxt);
	UsCheckStatus(us_model_decode((const uint8_t *) VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes),
								  &alloc, &model),
				  "decode the imported model", NULL);
	config = UsModelConfigJson(model);
	task = us_task_name(model->cfg.task);

	memset(&req, 0, sizeof(req));
	req.name = name;
	req.task = task;
	req.config_json = config;
	req.query = NULL;
	req.options = NULL;
	req.metrics_json = "{\"protocol\": \"imported\"}";
	req.weights = bytes;
	req.deploy = deploy;
	UsCatalogStore(&req, &res);
	MemoryContextDelete(cxt);
	PG_RETURN_INT32(res.version);
}
