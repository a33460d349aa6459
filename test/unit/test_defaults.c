/*
 * test_defaults.c: the table of option defaults (userseq/us_defaults.h) against what reads it:
 * us_model_config_default / us_train_config_default for every task, the value names, and the
 * options table of README.md (read from the working directory, the checkout's root under
 * `make unit`): every option of the table has exactly one README row whose default column is
 * the table's, and every README row is an option of the table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "userseq/us_defaults.h"
#include "userseq/us_model.h"
#include "unit.h"

static void
test_configs(void)
{
	for (int t = 1; t <= US_N_TASKS; t++)
	{
		us_model_config c;
		us_train_config tc;
		char		msg[256];

		us_model_config_default(&c, (us_task) t);
		us_train_config_default(&tc, (us_task) t);
		CHECK(c.embed_dim == us_default(US_DEF_EMBEDDING_DIM, t) &&
			  c.n_filters == us_default(US_DEF_NUM_FILTERS, t) &&
			  c.hidden_dim == us_default(US_DEF_HIDDEN_DIM, t) &&
			  c.max_len == us_default(US_DEF_MAX_LEN, t) &&
			  c.recent_window == us_default(US_DEF_RECENT_WINDOW, t) &&
			  c.tie_output == us_default(US_DEF_TIE_OUTPUT, t) &&
			  c.architecture == us_default(US_DEF_ARCHITECTURE, t) &&
			  c.dropout == (float) us_default(US_DEF_DROPOUT, t) &&
			  c.embed_init_std == (float) us_default(US_DEF_EMBED_INIT_STD, t) &&
			  c.embed_dropout == (float) us_default(US_DEF_EMBED_DROPOUT, t) &&
			  c.pos_weight == (float) us_default(US_DEF_POS_WEIGHT, t),
			  "%s: model config from the table", us_task_name(t));
		CHECK(c.n_widths == us_default(US_DEF_FILTER_WIDTHS, t) &&
			  memcmp(c.widths, us_default_widths, sizeof us_default_widths) == 0,
			  "%s: widths from the table", us_task_name(t));
		CHECK(tc.optimizer == us_default(US_DEF_OPTIMIZER, t) &&
			  tc.learning_rate == (float) us_default(US_DEF_LEARNING_RATE, t) &&
			  tc.momentum == (float) us_default(US_DEF_MOMENTUM, t) &&
			  tc.weight_decay == (float) us_default(US_DEF_WEIGHT_DECAY, t) &&
			  tc.clip_norm == (float) us_default(US_DEF_CLIP_NORM, t) &&
			  tc.lr_schedule == us_default(US_DEF_LR_SCHEDULE, t) &&
			  tc.lr_step_epochs == us_default(US_DEF_LR_STEP_EPOCHS, t) &&
			  tc.lr_gamma == (float) us_default(US_DEF_LR_GAMMA, t) &&
			  tc.epochs == us_default(US_DEF_EPOCHS, t) &&
			  tc.batch_size == us_default(US_DEF_BATCH_SIZE, t) &&
			  tc.batch_examples == us_default(US_DEF_BATCH_UNIT, t) &&
			  tc.max_examples_per_seq == us_default(US_DEF_MAX_EXAMPLES_PER_SEQ, t) &&
			  tc.seed == (uint64_t) us_default(US_DEF_SEED, t),
			  "%s: train config from the table", us_task_name(t));
		/* a task's defaults are a valid configuration (given its outputs) */
		c.n_items = 10;
		c.n_outputs = t == US_TASK_NEXT_ITEM ? 10 : t == US_TASK_MULTICLASS ? 3 : 1;
		if (t == US_TASK_NEXT_BEHAVIOR)
			c.n_behaviors = c.n_outputs = 4;
		CHECK(us_model_config_validate(&c, msg, sizeof msg) == US_OK, "%s: defaults valid: %s",
			  us_task_name(t), msg);
		CHECK(us_train_config_validate(&tc, msg, sizeof msg) == US_OK, "%s: train defaults valid: %s",
			  us_task_name(t), msg);
	}
	/* the tasks that differ do differ, so both columns are exercised */
	CHECK(us_default(US_DEF_BATCH_SIZE, US_TASK_BINARY) != us_default(US_DEF_BATCH_SIZE, US_TASK_NEXT_ITEM) &&
		  us_default(US_DEF_MAX_LEN, US_TASK_NEXT_BEHAVIOR) == us_option_defaults[US_DEF_MAX_LEN].next &&
		  us_default(US_DEF_MAX_LEN, US_TASK_REGRESSION) == us_option_defaults[US_DEF_MAX_LEN].label,
		  "per-task columns");
}

static void
test_names(void)
{
	const us_name_value *lists[] = {us_optimizer_names, us_lr_schedule_names, us_batch_unit_names,
	us_architecture_names, us_validation_names};
	char		buf[256];

	for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++)
		for (int i = 0; lists[l][i].name; i++)
		{
			int32_t		v = -99;

			CHECK(us_value_of(lists[l], lists[l][i].name, &v) == 0 && v == lists[l][i].value &&
				  strcmp(us_name_of(lists[l], v), lists[l][i].name) == 0,
				  "name %s round-trips", lists[l][i].name);
		}
	{
		int32_t		v = 7;

		CHECK(us_value_of(us_optimizer_names, "lbfgs", &v) == -1 && v == 7, "unknown name");
		CHECK(us_name_of(us_optimizer_names, 99) == NULL, "unknown value");
	}
	for (int d = 0; d < US_N_DEFAULTS; d++)
	{
		const us_option_default *o = &us_option_defaults[d];

		CHECK(o->key != NULL, "row %d has a key", d);
		if (o->kind == US_DK_NAME)
			CHECK(us_name_of(o->names, (int32_t) o->label) && us_name_of(o->names, (int32_t) o->next),
				  "%s: defaults are allowed names", o->key);
		CHECK(us_default_text((us_default_id) d, buf, sizeof buf) > 0, "%s: has a text", o->key);
	}
	us_default_text(US_DEF_BATCH_SIZE, buf, sizeof buf);
	CHECK(strcmp(buf, "64 (next_*: 256)") == 0, "README form of a per-task default: %s", buf);
	us_default_text(US_DEF_FILTER_WIDTHS, buf, sizeof buf);
	CHECK(strcmp(buf, "`[2,3,4]`") == 0, "README form of the widths: %s", buf);
}

/* the cells of a markdown table row "| a | b | c |", trimmed; returns the count */
static int
split_row(char *line, char **cells, int max)
{
	int			n = 0;
	char	   *p = line;

	if (*p != '|')
		return 0;
	p++;
	while (*p && n < max)
	{
		char	   *end = strchr(p, '|');
		char	   *a,
				   *b;

		if (!end)
			break;
		*end = '\0';
		for (a = p; *a == ' '; a++);
		for (b = end; b > a && b[-1] == ' '; b--);
		*b = '\0';
		cells[n++] = a;
		p = end + 1;
	}
	return n;
}

static void
test_readme(void)
{
	FILE	   *f = fopen("README.md", "r");
	char		line[4096];
	int			in_table = 0,
				rows = 0;
	int			seen[US_N_DEFAULTS] = {0};

	CHECK(f != NULL, "README.md readable from the working directory");
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
	{
		char	   *cells[4];
		char		key[128],
					want[512];
		int			n,
					found = -1;

		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "| option | default | allowed / meaning |") == 0)
		{
			in_table = 1;
			continue;
		}
		if (!in_table)
			continue;
		if (line[0] != '|')
			break;				/* the table ends */
		n = split_row(line, cells, 4);
		if (n < 3 || strncmp(cells[0], "---", 3) == 0)
			continue;
		rows++;
		/* `key` */
		snprintf(key, sizeof key, "%s", cells[0]);
		if (key[0] == '`' && strlen(key) > 2)
		{
			memmove(key, key + 1, strlen(key));
			key[strlen(key) - 1] = '\0';
		}
		for (int d = 0; d < US_N_DEFAULTS; d++)
			if (us_option_defaults[d].sql && strcmp(us_option_defaults[d].key, key) == 0)
				found = d;
		CHECK(found >= 0, "README option %s is in the table of defaults", cells[0]);
		if (found < 0)
			continue;
		seen[found]++;
		us_default_text((us_default_id) found, want, sizeof want);
		CHECK(strcmp(cells[1], want) == 0, "README default of %s: '%s', the table says '%s'",
			  key, cells[1], want);
	}
	fclose(f);
	CHECK(rows >= 30, "README's options table found (%d rows)", rows);
	for (int d = 0; d < US_N_DEFAULTS; d++)
	{
		const us_option_default *o = &us_option_defaults[d];

		/* "validation.fraction" is shown in the validation row */
		if (o->sql && !strchr(o->key, '.'))
			CHECK(seen[d] == 1, "option %s has one README row (%d)", o->key, seen[d]);
	}
}

int
main(void)
{
	test_configs();
	test_names();
	test_readme();
	return unit_finish("test_defaults");
}
