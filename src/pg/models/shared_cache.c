/*
 * shared_cache.c: the server-wide cache of decoded models (PostgreSQL 15 has no DSM registry
 * and the extension is not preloaded, so the sharing medium is the file system): one immutable
 * image file per catalog row version and fold budget,
 *     $PGDATA/pg_userseq/<db oid>_<name hash>_<model_id>_<version>_<crc32c>_<bytes>_<fold kB>.img
 * holding the fp32 weights, vocabulary and folded tables laid out position-independently
 * (src/core/scorer_share.c). The first backend that decodes a model writes it (to a temporary
 * name, then rename: others see a whole file or none); later backends and parallel workers map
 * it read-only (the page cache holds it once) and score in place.
 *
 * Trust: an image is checked completely (size, key, CRC32C) before use; a file that fails is
 * unlinked and the model decoded from the catalog as if there were no file. The CRC pass reads
 * every byte (tens of ms for the 67 MB image of a 6 MB model), so the backend that verified (or
 * wrote) an image leaves a marker "<image>.ok" naming the file's inode, size and mtime and
 * the postmaster's start time; a backend that finds a matching marker checks the structure but
 * not the CRC. Any write to the image (mtime), a replaced file (inode) or a restart after a
 * crash (start time) makes the marker stale and the next map verifies everything again. The
 * marker's mtime is the LRU clock. Identity: the name
 * and the key inside the file carry the row's model_id and version and its weights' CRC and
 * size, so a deploy, rollback or retrain resolves (through the caller's own catalog read, with
 * the caller's privileges) to another file and never reaches the old one; a dropped model's
 * row is gone, so nothing resolves to its file. Cleanup: writing an image unlinks the other
 * images of the same model name (superseded versions) and, least recently mapped first, images beyond
 * userseq.shared_cache_size. A backend that maps an unlinked file keeps a valid mapping.
 */
#include "postgres.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "funcapi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "models/shared_cache.h"
#include "userseq_pg.h"
#include "userseq/us_format.h"
#include "userseq/us_share.h"

#define US_SHARED_DIR "pg_userseq"

int64		userseq_shared_maps = 0;
int64		userseq_shared_writes = 0;
int64		userseq_shared_refused = 0;

typedef struct UsMapping
{
	MemoryContextCallback cb;
	void	   *addr;
	size_t		len;
} UsMapping;

static void
UsUnmap(void *arg)
{
	UsMapping  *m = (UsMapping *) arg;

	munmap(m->addr, m->len);
}

static void
UsSharedKey(const UsModelEntry *e, size_t budget, us_share_key *key)
{
	memset(key, 0, sizeof(*key));
	key->w[0] = MyDatabaseId;
	key->w[1] = (uint64) e->model_id;
	key->w[2] = (uint64) (uint32) e->version;
	key->w[3] = e->crc;
	key->w[4] = e->total_size;
	key->w[5] = budget;
}

/* the name's hash only groups a model's versions for cleanup; identity is the rest (and the key) */
static char *
UsSharedPath(const UsModelEntry *e, uint32 name_hash, size_t budget)
{
	return psprintf(US_SHARED_DIR "/%u_%08x_" INT64_FORMAT "_%d_%08x_" UINT64_FORMAT "_%zu.img",
					MyDatabaseId, name_hash, e->model_id, e->version, e->crc, e->total_size,
					budget / 1024);
}

static uint32
UsNameHash(const char *name)
{
	return us_crc32c(0, name, strlen(name));
}

static void UsUnlinkImage(const char *name);

/* What a marker says: this image file, as verified since this postmaster started. */
static void
UsMarkerText(const struct stat *st, char *buf, size_t len)
{
	snprintf(buf, len, "%llu %llu %lld.%09ld " INT64_FORMAT "\n",
			 (unsigned long long) st->st_ino, (unsigned long long) st->st_size,
			 (long long) st->st_mtim.tv_sec, (long) st->st_mtim.tv_nsec, (int64) PgStartTime);
}

/* True if image_path has a current marker (and then touches it: the LRU clock). */
static bool
UsMarkerValid(const char *image_path, const struct stat *st)
{
	char	   *mpath = psprintf("%s.ok", image_path);
	char		want[128],
				got[128];
	int			fd;
	ssize_t		n = -1;
	bool		valid;

	UsMarkerText(st, want, sizeof(want));
	fd = OpenTransientFile(mpath, O_RDONLY | PG_BINARY);
	if (fd >= 0)
	{
		n = read(fd, got, sizeof(got) - 1);
		CloseTransientFile(fd);
	}
	valid = n == (ssize_t) strlen(want) && memcmp(got, want, n) == 0;
	if (valid)
		(void) utimensat(AT_FDCWD, mpath, NULL, 0);
	pfree(mpath);
	return valid;
}

/* Leaves a marker for image_path (best effort; a missing marker only costs a CRC pass). */
static void
UsMarkerWrite(const char *image_path)
{
	char	   *mpath = psprintf("%s.ok", image_path);
	char	   *tmp = psprintf("%s.%d.tmp", mpath, MyProcPid);
	char		text[128];
	struct stat st;
	int			fd;
	bool		done = false;

	if (stat(image_path, &st) == 0)
	{
		UsMarkerText(&st, text, sizeof(text));
		fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
		if (fd >= 0)
		{
			done = write(fd, text, strlen(text)) == (ssize_t) strlen(text);
			CloseTransientFile(fd);
			done = done && rename(tmp, mpath) == 0;
		}
	}
	if (!done)
		(void) unlink(tmp);
	pfree(tmp);
	pfree(mpath);
}

bool
UsSharedOpen(UsModelEntry *entry, const char *name, size_t budget)
{
	char	   *path;
	int			fd;
	struct stat st;
	void	   *addr;
	us_share_key key;
	us_allocator alloc;
	us_status	s;
	UsMapping  *m;
	bool		verified;

	if (userseq_shared_cache_kb == 0 || name == NULL)
		return false;
	path = UsSharedPath(entry, UsNameHash(name), budget);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		pfree(path);
		return false;
	}
	/* no MAP_POPULATE: a call faults in only the rows it gathers */
	if (fstat(fd, &st) != 0 || st.st_size < 64)
		addr = MAP_FAILED;
	else
		addr = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	CloseTransientFile(fd);
	verified = addr != MAP_FAILED && UsMarkerValid(path, &st);

	UsSharedKey(entry, budget, &key);
	alloc = UsContextAllocator(entry->cxt);
	s = addr == MAP_FAILED ? US_ETRUNCATED :
		us_share_image_open(addr, (size_t) st.st_size, &key, !verified, &alloc,
							&entry->model, &entry->scorer);
	if (s != US_OK)
	{
		if (addr != MAP_FAILED)
			munmap(addr, (size_t) st.st_size);
		/* never trusted: removed, and the caller decodes from the catalog and writes it anew */
		UsUnlinkImage(path + strlen(US_SHARED_DIR "/"));
			ereport(LOG,
					(errmsg("userseq: removed shared model cache file \"%s\": %s",
							path, us_status_str(s))));
		userseq_shared_refused++;
		entry->model = NULL;
		entry->scorer = NULL;
		pfree(path);
		return false;
	}
	m = MemoryContextAlloc(entry->cxt, sizeof(UsMapping));
	m->addr = addr;
	m->len = (size_t) st.st_size;
	m->cb.func = UsUnmap;
	m->cb.arg = m;
	MemoryContextRegisterResetCallback(entry->cxt, &m->cb);
	if (!verified)
		UsMarkerWrite(path);
	userseq_shared_maps++;
	pfree(path);
	return true;
}

/* One image file of the directory, parsed from its name. */
typedef struct UsImageFile
{
	char		name[MAXPGPATH];
	Oid			db;
	uint32		name_hash;
	int64		model_id;
	int32		version;
	off_t		bytes;
	time_t		mtime;
} UsImageFile;

static bool
UsParseImageName(const char *name, UsImageFile *f)
{
	unsigned int db,
				nh;
	long long	id;
	int			version,
				n = 0;
	unsigned int crc;
	unsigned long long bytes;
	size_t		kb;

	if (sscanf(name, "%u_%08x_%lld_%d_%08x_%llu_%zu.img%n", &db, &nh, &id, &version, &crc, &bytes, &kb, &n) != 7 ||
		name[n] != '\0')
		return false;
	strlcpy(f->name, name, sizeof(f->name));
	f->db = db;
	f->name_hash = nh;
	f->model_id = id;
	f->version = version;
	return true;
}

/* Image files of the directory (all databases); *n set. Temporary files are not listed. */
static UsImageFile *
UsListImages(int *n)
{
	DIR		   *dir;
	struct dirent *de;
	int			cap = 16;
	UsImageFile *files = palloc(sizeof(UsImageFile) * cap);

	*n = 0;
	dir = AllocateDir(US_SHARED_DIR);
	if (dir == NULL)
		return files;
	while ((de = ReadDirExtended(dir, US_SHARED_DIR, LOG)) != NULL)
	{
		UsImageFile f;
		struct stat st;
		char		path[MAXPGPATH];

		if (!UsParseImageName(de->d_name, &f))
			continue;
		snprintf(path, sizeof(path), US_SHARED_DIR "/%s", de->d_name);
		if (stat(path, &st) != 0)
			continue;
		f.bytes = st.st_size;
		f.mtime = st.st_mtime;
		/* the marker's mtime is when a backend last mapped the image */
		strlcat(path, ".ok", sizeof(path));
		if (stat(path, &st) == 0)
			f.mtime = st.st_mtime;
		if (*n == cap)
		{
			cap *= 2;
			files = repalloc(files, sizeof(UsImageFile) * cap);
		}
		files[(*n)++] = f;
	}
	FreeDir(dir);
	return files;
}

static void
UsUnlinkImage(const char *name)
{
	char		path[MAXPGPATH];

	snprintf(path, sizeof(path), US_SHARED_DIR "/%s", name);
	(void) unlink(path);
	strlcat(path, ".ok", sizeof(path));
	(void) unlink(path);
}

/*
 * Unlinks the other images of the model name (superseded versions, other budgets) and then,
 * least recently mapped first, images until the directory fits userseq.shared_cache_size.
 * keep is never removed.
 */
static void
UsSharedTrim(uint32 name_hash, const char *keep)
{
	int			n;
	UsImageFile *files = UsListImages(&n);
	uint64		total = 0,
				limit = (uint64) userseq_shared_cache_kb * 1024;

	for (int i = 0; i < n; i++)
	{
		if (strcmp(files[i].name, keep) != 0 && files[i].db == MyDatabaseId &&
			files[i].name_hash == name_hash)
		{
			UsUnlinkImage(files[i].name);
			files[i].bytes = -1;
		}
		else
			total += (uint64) files[i].bytes;
	}
	while (total > limit)
	{
		int			victim = -1;

		for (int i = 0; i < n; i++)
			if (files[i].bytes >= 0 && strcmp(files[i].name, keep) != 0 &&
				(victim < 0 || files[i].mtime < files[victim].mtime))
				victim = i;
		if (victim < 0)
			break;
		UsUnlinkImage(files[victim].name);
		total -= (uint64) files[victim].bytes;
		files[victim].bytes = -1;
	}
	pfree(files);
}

void
UsSharedPublish(UsModelEntry *entry, const char *name, size_t budget)
{
	size_t		len;
	char	   *path,
			   *tmp;
	int			fd;
	void	   *addr = MAP_FAILED;
	us_share_key key;
	us_status	s;
	const char *why = NULL;

	if (userseq_shared_cache_kb == 0 || name == NULL || entry->scorer == NULL)
		return;
	len = us_share_image_size(entry->scorer);
	/* direct-path models have no image; an image over the whole budget would evict everything */
	if (len == 0 || len > (uint64) userseq_shared_cache_kb * 1024)
		return;
	if (MakePGDirectory(US_SHARED_DIR) != 0 && errno != EEXIST)
	{
		ereport(LOG, (errcode_for_file_access(),
					  errmsg("userseq: could not create directory \"%s\": %m", US_SHARED_DIR)));
		return;
	}
	path = UsSharedPath(entry, UsNameHash(name), budget);
	tmp = psprintf("%s.%d.tmp", path, MyProcPid);
	fd = OpenTransientFile(tmp, O_RDWR | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		why = "open";
	else if (ftruncate(fd, (off_t) len) != 0)
		why = "ftruncate";
	else if ((addr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
		why = "mmap";
	else
	{
		UsSharedKey(entry, budget, &key);
		s = us_share_image_write(entry->scorer, &key, addr, len);
		munmap(addr, len);
		if (s != US_OK)
			why = us_status_str(s);
	}
	/* no fsync: a file torn by a crash fails its checksum and is rebuilt */
	if (fd >= 0)
		CloseTransientFile(fd);
	if (why == NULL && rename(tmp, path) != 0)
		why = "rename";
	if (why != NULL)
	{
		ereport(LOG, (errmsg("userseq: could not write shared model cache file \"%s\" (%s): %m",
							 path, why)));
		(void) unlink(tmp);
	}
	else
	{
		userseq_shared_writes++;
		UsMarkerWrite(path);
		UsSharedTrim(UsNameHash(name), path + strlen(US_SHARED_DIR "/"));
	}
	pfree(tmp);
	pfree(path);
}

/* The image files of this database: what is shared, its size and when it was last mapped */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_shared_cache_stats);
Datum
userseq_shared_cache_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			n;
	UsImageFile *files;

	InitMaterializedSRF(fcinfo, 0);
	files = UsListImages(&n);
	for (int i = 0; i < n; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		if (files[i].db != MyDatabaseId)
			continue;
		values[0] = CStringGetTextDatum(files[i].name);
		values[1] = Int64GetDatum(files[i].model_id);
		values[2] = Int32GetDatum(files[i].version);
		values[3] = Int64GetDatum((int64) files[i].bytes);
		values[4] = TimestampTzGetDatum(time_t_to_timestamptz(files[i].mtime));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_NULL();
}

/* This backend's shared-cache counters */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_shared_cache_counters);
Datum
userseq_shared_cache_counters(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(userseq_shared_maps);
	values[1] = Int64GetDatum(userseq_shared_writes);
	values[2] = Int64GetDatum(userseq_shared_refused);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/* Removes every image file of this database; backends that map one keep it until they let go */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_shared_cache_clear);
Datum
userseq_shared_cache_clear(PG_FUNCTION_ARGS)
{
	int			n,
				removed = 0;
	UsImageFile *files = UsListImages(&n);

	for (int i = 0; i < n; i++)
		if (files[i].db == MyDatabaseId)
		{
			UsUnlinkImage(files[i].name);
			removed++;
		}
	PG_RETURN_INT32(removed);
}
