/*
 * make_corpus.c: writes the fuzz seed corpus (small valid encoded models of every task and
 * input option, fp32 as format version 1 and int8 as version 4) into the directory given as
 * argv[1]. Built and run by `make fuzz-corpus`, which also copies a few frozen version 2
 * fixtures (no longer written); the outputs are committed in test/fuzz/corpus/. next_item
 * models are also written with a small transition table (flags bit 0, files *_trans*.usqm).
 */
#include <stdio.h>
#include <stdlib.h>

#include "userseq/us_format.h"
#include "../unit/model_fixture.h"

int
main(int argc, char **argv)
{
	static const char *names[] = {"binary", "multiclass", "regression", "next_item",
	"next_behavior"};

	if (argc != 2)
		return 2;
	for (int v = 0; v < FIXTURE_N_VARIANTS; v += 3)
	{
		fixture_opts o;
		us_model   *m = NULL;

		fixture_variant(&o, v);
		/* smaller than the unit-test fixtures: seeds should be a few hundred bytes */
		o.n_vocab = 5;
		o.E = 4;
		o.F = 3;
		o.H = o.tie ? 4 : 3;
		o.max_len = 6;
		if (fixture_model(&o, 4242 + v, &m) != US_OK)
			return 1;
		for (int q = 0; q < (o.task == US_TASK_NEXT_ITEM ? 4 : 2); q++)
		{
			size_t		n;
			uint8_t    *buf;
			char		path[512];
			FILE	   *f;

			if (q == 1 && us_model_quantize(m, NULL) != US_OK)
				return 1;
			/* q 2: the int8 model with a table; q 3: the fp32 one (built again) */
			if (q == 3)
			{
				us_model_free(m);
				m = NULL;
				if (fixture_model(&o, 4242 + v, &m) != US_OK)
					return 1;
			}
			if (q >= 2 && fixture_transitions(m, 99 + v, 6, 0.75f) != US_OK)
				return 1;
			n = us_model_encoded_size(m);
			buf = malloc(n);
			if (buf == NULL || us_model_encode(m, buf, n) != US_OK)
				return 1;
			snprintf(path, sizeof(path), "%s/%s_b%d_g%d_r%d_t%d%s.usqm", argv[1], names[o.task - 1],
					 o.behaviors, o.gaps, o.recent, o.tie,
					 q == 1 ? "_int8" : q == 2 ? "_trans_int8" : q == 3 ? "_trans" : "");
			f = fopen(path, "wb");
			if (f == NULL || fwrite(buf, 1, n, f) != n || fclose(f) != 0)
				return 1;
			free(buf);
		}
		us_model_free(m);
	}
	return 0;
}
