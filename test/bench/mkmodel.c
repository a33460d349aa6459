/*
 * mkmodel.c: writes the bytes of a randomly initialised userseq model (no training) of a given
 * task and shape, for scoring / recommendation speed benchmarks and cache tests, where the
 * weights' quality does not matter. Items are ids 1..V with popularity counts V+1-id.
 *
 *   mkmodel TASK V E F H MAX_LEN SEED OUT   (TASK: binary | multiclass | regression | next_item)
 *
 * Widths are 3,4,5 (the PyTorch peer's spec shape). Test and benchmark code only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "userseq/us_format.h"
#include "userseq/us_model.h"
#include "bench_config.h"

int
main(int argc, char **argv)
{
	us_model_config cfg;
	us_vocab	voc;
	us_model   *m;
	us_status	st;
	int			task,
				V;
	size_t		len;
	uint8_t    *buf;
	FILE	   *f;
	static char *classes[] = {"a", "b", "c"};

	if (argc != 9)
	{
		fprintf(stderr, "usage: mkmodel TASK V E F H MAX_LEN SEED OUT\n");
		return 2;
	}
	task = !strcmp(argv[1], "binary") ? US_TASK_BINARY :
		!strcmp(argv[1], "multiclass") ? US_TASK_MULTICLASS :
		!strcmp(argv[1], "regression") ? US_TASK_REGRESSION :
		!strcmp(argv[1], "next_item") ? US_TASK_NEXT_ITEM : 0;
	if (!task)
	{
		fprintf(stderr, "unknown task %s\n", argv[1]);
		return 2;
	}
	V = atoi(argv[2]);
	us_model_config_default(&cfg, (us_task) task);
	bench_shape_128(&cfg);
	memset(&voc, 0, sizeof(voc));
	voc.n_items = V;
	voc.item_ids = malloc(sizeof(int64_t) * V);
	voc.item_counts = malloc(sizeof(uint32_t) * V);
	for (int i = 0; i < V; i++)
	{
		voc.item_ids[i] = i + 1;
		voc.item_counts[i] = (uint32_t) (V - i);
	}
	cfg.n_items = V + 2;
	cfg.n_outputs = task == US_TASK_NEXT_ITEM ? cfg.n_items : task == US_TASK_MULTICLASS ? 3 : 1;
	if (task == US_TASK_MULTICLASS)
	{
		voc.n_classes = 3;
		voc.classes = classes;
	}
	cfg.embed_dim = atoi(argv[3]);
	cfg.n_filters = atoi(argv[4]);
	cfg.hidden_dim = atoi(argv[5]);
	cfg.max_len = atoi(argv[6]);
	st = us_model_create(&cfg, &voc, (uint64_t) atoll(argv[7]), us_malloc_allocator(), &m);
	if (st != US_OK)
	{
		fprintf(stderr, "create: %s\n", us_status_str(st));
		return 1;
	}
	len = us_model_encoded_size(m);
	buf = malloc(len);
	st = us_model_encode(m, buf, len);
	if (st != US_OK)
	{
		fprintf(stderr, "encode: %s\n", us_status_str(st));
		return 1;
	}
	f = fopen(argv[8], "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
	{
		perror(argv[8]);
		return 1;
	}
	return 0;
}
