/*
 * publish.h: copies of deployed models in user tables (userseq_publish), kept current on
 * every change of the deployed version.
 */
#ifndef USERSEQ_PUBLISH_H
#define USERSEQ_PUBLISH_H

#include "postgres.h"

/*
 * Rewrites the row of name in every table it is published to (only target when that is
 * valid) from the deployed version (no row when none is deployed), each as the role that
 * registered the publication. SPI must be connected; runs in the caller's transaction, so a
 * failed write fails the deploy that caused it.
 */
extern void UsPublishRefresh(const char *name, Oid target);

#endif
