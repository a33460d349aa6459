/*
 * publish.c: userseq_publish / userseq_unpublish, copies of a model's deployed version in a
 * table of the user's (a Citus reference table, a table replicated elsewhere), kept current.
 *
 * A table of the form (name text, version int, weights bytea) receives one row per published
 * model: the deployed version's bytes, for the by-value scoring functions, which read no table
 * themselves and so run where a by-name call cannot (Citus shard tasks). The registry
 * @extschema@.publications (written by catalog.c as the catalog owner) remembers each
 * (model, target) and the role that registered it; every change of the deployed version
 * (train with deploy, retrain, deploy, rollback, drop) rewrites the row in each target as that
 * role, never elevated, with search_path = pg_catalog, pg_temp and
 * SECURITY_RESTRICTED_OPERATION, as PostgreSQL runs maintenance code as a table's owner.
 * Registering needs the model owner's privileges (a publication's failure fails their deploys)
 * and INSERT and DELETE on the target.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "models/catalog.h"
#include "models/publish.h"
#include "userseq_pg.h"

/* A target needs name text, version int4 and weights bytea. */
static void
UsCheckTarget(Oid target)
{
	static const struct
	{
		const char *col;
		Oid			type;
	}			cols[] = {{"name", TEXTOID}, {"version", INT4OID}, {"weights", BYTEAOID}};
	char	   *relname = get_rel_name(target);
	AclResult	acl;

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", target)));
	if (get_rel_relkind(target) != RELKIND_RELATION && get_rel_relkind(target) != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", relname)));
	for (int i = 0; i < lengthof(cols); i++)
	{
		AttrNumber	att = get_attnum(target, cols[i].col);

		if (att == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("table \"%s\" has no column \"%s\"", relname, cols[i].col),
					 errhint("A publication target needs the columns name text, version integer and weights bytea.")));
		if (get_atttype(target, att) != cols[i].type)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of \"%s\" has type %s, not %s", cols[i].col, relname,
							format_type_be(get_atttype(target, att)), format_type_be(cols[i].type)),
					 errhint("A publication target needs the columns name text, version integer and weights bytea.")));
	}
	acl = pg_class_aclcheck(target, GetUserId(), ACL_INSERT | ACL_DELETE);
	if (acl != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to publish into \"%s\"", relname),
				 errdetail("Publishing needs INSERT and DELETE on the target table.")));
}

/* The row of name in target, from the deployed version, as the current user. */
static void
UsPublishInto(const char *name, Oid target)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	char	   *rel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(target)),
												 get_rel_name(target));
	char	   *del = psprintf("DELETE FROM %s WHERE name OPERATOR(pg_catalog.=) $1", rel);
	char	   *ins = psprintf("INSERT INTO %s (name, version, weights) SELECT m.name, m.version, m.weights "
							   "FROM %s.models m WHERE m.name OPERATOR(pg_catalog.=) $1 AND m.deployed",
							   rel, quote_identifier(get_namespace_name(UsCatalogNamespace())));

	if (SPI_execute_with_args(del, 1, types, args, NULL, false, 0) != SPI_OK_DELETE ||
		SPI_execute_with_args(ins, 1, types, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write the publication of \"%s\" into %s", name, rel);
}

void
UsPublishRefresh(const char *name, Oid only_target)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	char	   *sql = psprintf("SELECT target::pg_catalog.oid, registered_by FROM %s.publications "
							   "WHERE model OPERATOR(pg_catalog.=) $1 ORDER BY target",
							   quote_identifier(get_namespace_name(UsCatalogNamespace())));
	int			level;
	int			n;
	Oid		   *targets;
	char	  **roles;

	/* a database still on 0.1.0 (not yet ALTER EXTENSION ... UPDATE) has no publications */
	if (!OidIsValid(get_relname_relid("publications", UsCatalogNamespace())))
		return;
	level = UsInternalSqlBegin();
	/* not read-only: a fresh snapshot sees the registration and deploy written just before */
	if (SPI_execute_with_args(sql, 1, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the publications catalog");
	n = (int) SPI_processed;
	targets = palloc(sizeof(Oid) * Max(n, 1));
	roles = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		targets[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		roles[i] = pstrdup(NameStr(*DatumGetName(SPI_getbinval(SPI_tuptable->vals[i],
															   SPI_tuptable->tupdesc, 2, &isnull))));
	}
	for (int i = 0; i < n; i++)
	{
		Oid			role = get_role_oid(roles[i], true);
		Oid			save_user;
		int			save_sec;

		if (OidIsValid(only_target) && targets[i] != only_target)
			continue;
		if (get_rel_name(targets[i]) == NULL || !OidIsValid(role))
		{
			ereport(WARNING,
					(errmsg("publication of model \"%s\" skipped: %s", name,
							OidIsValid(role) ? "its table no longer exists" : "the role that registered it no longer exists"),
					 errhint("Remove it with userseq_unpublish.")));
			continue;
		}
		CHECK_FOR_INTERRUPTS();
		GetUserIdAndSecContext(&save_user, &save_sec);
		SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
		UsPublishInto(name, targets[i]);
		SetUserIdAndSecContext(save_user, save_sec);
	}
	UsInternalSqlEnd(level);
}

/* userseq_publish(model text, target regclass) RETURNS int: the version published (NULL: none deployed) */
PG_FUNCTION_INFO_V1(userseq_publish);
Datum
userseq_publish(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			target = PG_GETARG_OID(1);
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	bool		isnull = true;
	Datum		version = (Datum) 0;
	int			level;

	UsCheckTarget(target);
	(void) UsCatalogSetPublication(name, target, true);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	UsPublishRefresh(name, target);
	level = UsInternalSqlBegin();
	if (SPI_execute_with_args(psprintf("SELECT version FROM %s.models WHERE name OPERATOR(pg_catalog.=) $1 AND deployed",
									   quote_identifier(get_namespace_name(UsCatalogNamespace()))),
							  1, types, args, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		version = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	UsInternalSqlEnd(level);
	SPI_finish();
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(version);
}

/* userseq_unpublish(model text, target regclass) RETURNS boolean: whether it was published */
PG_FUNCTION_INFO_V1(userseq_unpublish);
Datum
userseq_unpublish(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_BOOL(UsCatalogSetPublication(name, PG_GETARG_OID(1), false));
}
