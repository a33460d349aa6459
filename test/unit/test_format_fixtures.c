/*
 * test_format_fixtures.c: the decoder keeps reading every model format version ever written.
 *
 * test/fixtures/models/ holds models encoded by earlier releases (v<format>_<task>_<n>.usqm,
 * committed once and never regenerated) and, beside each, the outputs that release's scorer
 * gave on fixed sequences (.expected: one line per sequence, the outputs as hex floats). This
 * test decodes every fixture with today's decoder and checks that today's scorer gives the same
 * outputs (relative 1e-5: kernels may sum in another order), on the direct and the folded path.
 *
 * `test_format_fixtures --write DIR` writes fixtures of the current format version into DIR;
 * run it once when the format version changes, and commit the new files beside the old ones.
 * Version 2 is the first int8 format: its fixtures are quantized text-CNNs (us_model_quantize).
 * Version 3 is written only for sasrec models (fp32), so its fixtures are sasrec variants.
 * Version 4 replaced version 2 for int8 text-CNNs (varint vocabulary): quantized text-CNNs
 * again. Version 2 is no longer written: a version 2 fixture must re-encode as version 4 bytes
 * that decode to the same model.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "userseq/us_format.h"
#include "unit.h"
#include "model_fixture.h"
#include "userseq/us_model.h"

#define FIXTURE_DIR		"test/fixtures/models"
#define N_SEQUENCES		8

/* Deterministic sequences over the model's rows (oldest first), lengths 0 .. max_len + 3. */
static int32_t
make_sequence(const us_model_config *cfg, int s, int32_t *items, int32_t *behs, int32_t *gaps)
{
	uint32_t	x = 2463534242u + 977u * (uint32_t) s;
	int32_t		n = (s * 5) % (cfg->max_len + 4);

	for (int32_t i = 0; i < n; i++)
	{
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		items[i] = (int32_t) (x % (uint32_t) cfg->n_items);
		behs[i] = cfg->n_behaviors > 0 ? (int32_t) ((x >> 8) % (uint32_t) cfg->n_behaviors) : 0;
		gaps[i] = cfg->n_gap_buckets > 0 ? (int32_t) ((x >> 16) % (uint32_t) cfg->n_gap_buckets) : 0;
	}
	return n;
}

static int
read_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	long		n;

	if (f == NULL)
		return -1;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*buf = malloc((size_t) n + 1);
	*len = (size_t) n;
	if (*buf == NULL || fread(*buf, 1, (size_t) n, f) != (size_t) n)
	{
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

static int
write_fixtures(const char *dir)
{
	static const char *task_names[] = {"", "binary", "multiclass", "regression", "next_item",
	"next_behavior"};

	for (int v = 0; v < FIXTURE_N_VARIANTS; v += 4)
	{
		fixture_opts o;
		us_model   *m = NULL;
		us_scorer  *sc = NULL;
		size_t		n;
		uint8_t    *buf;
		char		path[600];
		FILE	   *f;
		int32_t		items[64], behs[64], gaps[64];
		float		out[4096];

		if (US_FORMAT_VERSION == 3)
			fixture_variant_sasrec(&o, v);
		else
			fixture_variant(&o, v);
		if (fixture_model(&o, 9000 + v, &m) != US_OK)
			return 1;
		/* versions 2 and 4 are written for int8 models only */
		if ((US_FORMAT_VERSION == 2 || US_FORMAT_VERSION == 4) && us_model_quantize(m, NULL) != US_OK)
			return 1;
		n = us_model_encoded_size(m);
		buf = malloc(n);
		if (buf == NULL || us_model_encode(m, buf, n) != US_OK)
			return 1;
		snprintf(path, sizeof(path), "%s/v%u_%s_%02d.usqm", dir, (unsigned) US_FORMAT_VERSION,
				 task_names[o.task], v);
		if ((f = fopen(path, "wb")) == NULL || fwrite(buf, 1, n, f) != n || fclose(f) != 0)
			return 1;
		snprintf(path, sizeof(path), "%s/v%u_%s_%02d.expected", dir, (unsigned) US_FORMAT_VERSION,
				 task_names[o.task], v);
		if ((f = fopen(path, "w")) == NULL || us_scorer_create(m, 0, us_malloc_allocator(), &sc) != US_OK)
			return 1;
		for (int s = 0; s < N_SEQUENCES; s++)
		{
			us_events	ev = {items, behs, gaps, 0};

			ev.n = make_sequence(&m->cfg, s, items, behs, gaps);
			if (us_scorer_forward(sc, &ev, out, NULL) != US_OK)
				return 1;
			for (int j = 0; j < m->cfg.n_outputs; j++)
				fprintf(f, "%s%a", j ? " " : "", (double) out[j]);
			fprintf(f, "\n");
		}
		fclose(f);
		us_scorer_free(sc);
		us_model_free(m);
		free(buf);
		printf("wrote %s\n", path);
	}
	return 0;
}

/* A version 2 model is written as version 4 with the same vocabulary and weights. */
static void
check_v2_upgrade(const char *stem, const us_model *m)
{
	size_t		n = us_model_encoded_size(m),
				n2 = 0;
	uint8_t    *b = malloc(n),
			   *b2 = NULL;
	us_model   *d = NULL;
	int			same = 0;

	CHECK(b != NULL && us_model_encode(m, b, n) == US_OK && b[4] == 4,
		  "%s: re-encoded as version 4", stem);
	if (b && us_model_decode(b, n, us_malloc_allocator(), &d) == US_OK)
	{
		same = d->quantized && d->n_params == m->n_params &&
			memcmp(d->params_block, m->params_block, m->n_params * 4) == 0 &&
			d->vocab.n_items == m->vocab.n_items &&
			memcmp(d->vocab.item_ids, m->vocab.item_ids, sizeof(int64_t) * (size_t) m->vocab.n_items) == 0 &&
			memcmp(d->vocab.item_counts, m->vocab.item_counts, sizeof(uint32_t) * (size_t) m->vocab.n_items) == 0;
		n2 = us_model_encoded_size(d);
		b2 = malloc(n2);
		same = same && b2 && us_model_encode(d, b2, n2) == US_OK && n2 == n && memcmp(b, b2, n) == 0;
	}
	CHECK(same, "%s: its version 4 bytes decode to the same model and re-encode identically", stem);
	us_model_free(d);
	free(b);
	free(b2);
}

/* Decodes one fixture and compares both scorer paths with the stored outputs. */
static void
check_fixture(const char *stem)
{
	char		path[600];
	uint8_t    *buf = NULL;
	size_t		len = 0;
	us_model   *m = NULL;
	us_format_header hdr;
	FILE	   *f;
	int32_t		items[64], behs[64], gaps[64];
	float	   *out;
	double		worst = 0;
	int			lines = 0;

	snprintf(path, sizeof(path), "%s/%s.usqm", FIXTURE_DIR, stem);
	CHECK(read_file(path, &buf, &len) == 0, "read_file(path, &buf, &len) == 0");
	CHECK(us_format_peek(buf, len, &hdr) == US_OK, "us_format_peek(buf, len, &hdr) == US_OK");
	CHECK(hdr.version == (uint32_t) (stem[1] - '0'), "%s: header says format version %u", stem, hdr.version);
	CHECK(us_model_decode(buf, len, us_malloc_allocator(), &m) == US_OK, "decode %s", stem);
	if (m == NULL)
		return;
	if (hdr.version == US_FORMAT_VERSION_INT8_V2)
		check_v2_upgrade(stem, m);
	out = malloc(sizeof(float) * (size_t) m->cfg.n_outputs);
	snprintf(path, sizeof(path), "%s/%s.expected", FIXTURE_DIR, stem);
	f = fopen(path, "r");
	CHECK(f != NULL, "f != NULL");
	for (int path_kind = 0; path_kind < 2 && f != NULL; path_kind++)
	{
		us_scorer  *sc = NULL;

		rewind(f);
		CHECK(us_scorer_create(m, path_kind ? (size_t) 1 << 30 : 0, us_malloc_allocator(), &sc) == US_OK, "us_scorer_create(m, path_kind ? (size_t) 1 << 30 : 0, us_malloc_allocator(), &sc) == US_OK");
		for (int s = 0; s < N_SEQUENCES && sc != NULL; s++)
		{
			us_events	ev = {items, behs, gaps, 0};

			ev.n = make_sequence(&m->cfg, s, items, behs, gaps);
			CHECK(us_scorer_forward(sc, &ev, out, NULL) == US_OK, "us_scorer_forward(sc, &ev, out, NULL) == US_OK");
			for (int j = 0; j < m->cfg.n_outputs; j++)
			{
				double		want;

				CHECK(fscanf(f, "%la", &want) == 1, "%s: expected output %d of sequence %d", stem, j, s);
				worst = fmax(worst, fabs(out[j] - want) / fmax(1.0, fabs(want)));
			}
			lines++;
		}
		us_scorer_free(sc);
	}
	CHECK(worst <= 1e-5, "%s: outputs differ from the stored ones by %g", stem, worst);
	printf("  %s (format v%u, task %d): %d sequences on 2 paths, max rel diff %.2g\n", stem,
		   (unsigned) hdr.version, m->cfg.task, lines / 2, worst);
	if (f)
		fclose(f);
	free(out);
	us_model_free(m);
	free(buf);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

int
main(int argc, char **argv)
{
	DIR		   *d;
	struct dirent *e;
	char	   *stems[256];
	int			n = 0;
	int			versions_seen[16] = {0};

	if (argc == 3 && strcmp(argv[1], "--write") == 0)
		return write_fixtures(argv[2]);

	d = opendir(FIXTURE_DIR);
	CHECK(d != NULL, "no %s (run from the repository root)", FIXTURE_DIR);
	while (d != NULL && (e = readdir(d)) != NULL && n < 256)
	{
		size_t		l = strlen(e->d_name);

		if (l > 5 && strcmp(e->d_name + l - 5, ".usqm") == 0)
		{
			stems[n] = strndup(e->d_name, l - 5);
			if (e->d_name[0] == 'v' && e->d_name[1] >= '1' && e->d_name[1] <= '9')
				versions_seen[e->d_name[1] - '0'] = 1;
			n++;
		}
	}
	if (d)
		closedir(d);
	qsort(stems, (size_t) n, sizeof(char *), cmp_str);
	CHECK(n >= 5, "only %d fixtures", n);
	/* every format version up to the current one has fixtures */
	for (unsigned v = 1; v <= US_FORMAT_VERSION && v < 16; v++)
		CHECK(versions_seen[v], "no fixtures of format version %u in %s", v, FIXTURE_DIR);
	for (int i = 0; i < n; i++)
	{
		check_fixture(stems[i]);
		free(stems[i]);
	}
	return unit_finish("test_format_fixtures");
}
