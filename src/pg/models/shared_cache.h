/*
 * shared_cache.h: decoded models and their folded tables shared by every backend of the
 * server through immutable image files under $PGDATA/pg_userseq, mapped read-only.
 */
#ifndef USERSEQ_SHARED_CACHE_H
#define USERSEQ_SHARED_CACHE_H

#include "models/model_cache.h"

/*
 * Fills entry->model and entry->scorer from the image of model name's catalog row (model_id, version)
 * whose weights have this crc and size, folded within budget bytes; false if there is none
 * (or it was refused: a corrupt file is removed, never used). Call only after the caller's
 * own catalog read found the row (permissions are checked per call, not here).
 */
extern bool UsSharedOpen(UsModelEntry *entry, const char *name, size_t budget);

/*
 * Writes the image of a freshly built entry of model name for later backends (best effort:
 * LOG on failure) and removes the images of name's other versions.
 */
extern void UsSharedPublish(UsModelEntry *entry, const char *name, size_t budget);

/* Counters of this backend: images mapped, written, refused as corrupt. */
extern int64 userseq_shared_maps;
extern int64 userseq_shared_writes;
extern int64 userseq_shared_refused;

#endif
