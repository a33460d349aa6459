# userseq: PGXS build of the extension, plus standalone targets for the pure-C core.
#
#   make && make install        build and install the extension (needs pg_config)
#   make installcheck           pg_regress suites: test/sql/*.sql against expected/*.out
#   make prove_installcheck     pgTAP suites: test/pgtap/*.sql through pg_prove
#   make unit                   C unit tests of src/core, no PostgreSQL needed
#   make unit-asan              the same under AddressSanitizer + UBSan
#   make unit-valgrind          the same under valgrind
#   make bench-train            training sequences/s of the core (BENCH_THREADS=1)
#   make train-digest           fingerprint of the core's training floats (diff before/after a refactor)
#   make fuzz                   libFuzzer harness of the model decoder (clang), bounded run
#   make fuzz-corpus            regenerate the fuzz seed models in test/fuzz/corpus
#   make bench-core             single-sequence scoring benchmark of src/core (-O2 -march=native)
#   make bench-limit            the folded gather-and-add limit next to the core scorer
#   make bench-torch            core vs the PyTorch peer on identical TSV data (test/bench/README.md)
#   make core-lib               the core alone as a static library, build/libuserseq_core.a
#
# OPTFLAGS="" gives a portable build (no -march=native).

EXTENSION = userseq
EXTVERSION = 0.2.0

MODULE_big = userseq
CORE_SRCS = $(sort $(wildcard src/core/*.c))
GLUE_SRCS = $(sort $(wildcard src/pg/*.c src/pg/*/*.c))
OBJS = $(CORE_SRCS:.c=.o) $(GLUE_SRCS:.c=.o)
# internal headers: build dependencies only (PGXS would install anything named HEADERS)
CORE_HEADERS = $(wildcard include/userseq/*.h src/core/*.h)
GLUE_HEADERS = $(wildcard src/pg/*.h src/pg/*/*.h)

# The install script of the current version is assembled from sql/parts/ in name order (one part
# per SQL area). Earlier versions' install scripts are frozen files (sql/userseq--0.1.0.sql). The
# upgrade script sql/userseq--0.1.0--0.2.0.sql is assembled from sql/upgrades/0.1.0--0.2.0.sql
# (changes to 0.1.0 objects and objects added to existing parts, written by hand) and the parts
# that are wholly new in 0.2.0 (NEW_PARTS_0_2_0). test/t/upgrade.sh checks that an updated
# database has exactly the objects of a fresh install.
SQL_PARTS = $(sort $(wildcard sql/parts/*.sql))
NEW_PARTS_0_2_0 = sql/parts/44_tune.sql sql/parts/65_shared_cache.sql sql/parts/85_explain.sql sql/parts/85_live.sql sql/parts/90_report.sql sql/parts/92_publish.sql
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql sql/$(EXTENSION)--0.1.0--0.2.0.sql
DATA = sql/$(EXTENSION)--0.1.0.sql

REGRESS = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test
# isolation specs (test/specs/*.spec, expected output beside the pg_regress files in expected/);
# `make installcheck` runs them after the pg_regress suites
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=.

OPTFLAGS ?= -march=native
WARNFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers -Werror
PG_CFLAGS = -std=gnu11 $(OPTFLAGS) $(WARNFLAGS) -fno-math-errno
PG_CPPFLAGS = -Iinclude -Isrc/pg
SHLIB_LINK = -lopenblas -lm -pthread
EXTRA_CLEAN = test/unit/build results regression.diffs regression.out build

STANDALONE_GOALS = unit unit-asan unit-valgrind unit-valgrind-run fuzz fuzz-corpus bench-core bench-limit bench-train bench-torch core-train core-lib train-digest
ifeq ($(filter $(STANDALONE_GOALS),$(MAKECMDGOALS)),)
PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
endif

$(OBJS): $(CORE_HEADERS) $(GLUE_HEADERS)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS)
	cat $^ > $@

sql/$(EXTENSION)--0.1.0--0.2.0.sql: sql/upgrades/0.1.0--0.2.0.sql $(NEW_PARTS_0_2_0)
	cat $^ > $@

# pgTAP suites (need the pgtap extension available in the cluster)
PROVE_TESTS ?= $(sort $(wildcard test/pgtap/*.sql))
.PHONY: prove_installcheck
prove_installcheck:
	pg_prove --ext .sql -v $(PROVE_TESTS) 2>&1 | tail -n 200

# ---------------------------------------------------------------- standalone core
CC ?= cc
CORE_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -g -fno-math-errno -Iinclude -Wall -Wextra -Werror $(OPTFLAGS)
UNIT_SRCS = $(sort $(wildcard test/unit/test_*.c))
UNIT_BUILD = test/unit/build

.PHONY: unit unit-asan unit-valgrind fuzz
# the core is compiled once per flavour (plain, ASan, valgrind) into a static library that every
# test binary links, not once per test binary
UNIT_CORE_LIB = $(UNIT_BUILD)/libcore.a
$(UNIT_BUILD)/core/%.o: src/core/%.c $(CORE_HEADERS)
	@mkdir -p $(UNIT_BUILD)/core
	$(CC) $(CORE_CFLAGS) $(UNIT_CFLAGS) -c -o $@ $<
$(UNIT_CORE_LIB): $(CORE_SRCS:src/core/%.c=$(UNIT_BUILD)/core/%.o)
	rm -f $@
	ar rcs $@ $^
$(UNIT_BUILD)/%: test/unit/%.c test/unit/unit.h $(UNIT_CORE_LIB)
	$(CC) $(CORE_CFLAGS) $(UNIT_CFLAGS) -o $@ $< $(UNIT_CORE_LIB) -lopenblas -lm -pthread

unit: $(UNIT_SRCS:test/unit/%.c=$(UNIT_BUILD)/%)
	@bash test/unit/run.sh $^

unit-asan:
	$(MAKE) unit UNIT_BUILD=test/unit/build-asan OPTFLAGS= \
		UNIT_CFLAGS="-O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

# valgrind 3.19 knows no AVX-512 and emulates FMA unfused, so it gets a portable build; it runs
# threads one at a time, so BLAS gets one thread (its idle workers would only cost time)
unit-valgrind:
	$(MAKE) unit-valgrind-run UNIT_BUILD=test/unit/build-valgrind OPTFLAGS=

.PHONY: unit-valgrind-run
unit-valgrind-run: $(UNIT_SRCS:test/unit/%.c=$(UNIT_BUILD)/%)
	@OPENBLAS_NUM_THREADS=1 UNIT_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
		US_UNIT_QUICK=1 bash test/unit/run.sh $^

# training throughput of the core (not a test): spec and lean configs, 1 BLAS thread by default;
# BENCH_ARGS="spec 20 2" runs the trainer's own 2 threads (then keep BENCH_THREADS=1)
BENCH_THREADS ?= 1
.PHONY: bench-train
bench-train:
	@mkdir -p test/bench/build
	$(CC) $(CORE_CFLAGS) -O3 -pthread -o test/bench/build/bench_train test/bench/bench_train.c $(CORE_SRCS) -lopenblas -lm -pthread
	OPENBLAS_NUM_THREADS=$(BENCH_THREADS) test/bench/build/bench_train $(BENCH_ARGS)

# hashes of trained weights, gradients and predictions (test/bench/train_digest.c): a
# restructuring of src/core must leave this output unchanged
.PHONY: train-digest
train-digest:
	@mkdir -p test/bench/build
	@$(CC) $(CORE_CFLAGS) -o test/bench/build/train_digest test/bench/train_digest.c $(CORE_SRCS) -lopenblas -lm -pthread
	@OPENBLAS_NUM_THREADS=1 test/bench/build/train_digest

FUZZ_SECONDS ?= 60
fuzz:
	@mkdir -p test/fuzz/build/corpus
	clang -std=c11 -g -O1 -Iinclude -fsanitize=fuzzer,address,undefined \
		-o test/fuzz/build/fuzz_decode test/fuzz/fuzz_decode.c $(CORE_SRCS) -lopenblas -lm -pthread
	test/fuzz/build/fuzz_decode -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
		test/fuzz/build/corpus test/fuzz/corpus

fuzz-corpus:
	@mkdir -p test/fuzz/build
	$(CC) $(CORE_CFLAGS) -o test/fuzz/build/make_corpus test/fuzz/make_corpus.c $(CORE_SRCS) -lopenblas -lm -pthread
	test/fuzz/build/make_corpus test/fuzz/corpus
	cp test/fixtures/models/v2_binary_00.usqm test/fixtures/models/v2_next_behavior_04.usqm \
		test/fixtures/models/v2_next_item_08.usqm test/fuzz/corpus/

# Scoring throughput; pass BENCH_ARGS (see test/bench/bench_scorer.c). One BLAS thread.
BENCH_ARGS ?=
bench-core:
	@mkdir -p test/bench/build
	$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -g -march=native -Iinclude -Wall -Wextra -Werror \
		-o test/bench/build/bench_scorer test/bench/bench_scorer.c $(CORE_SRCS) -lopenblas -lm -pthread
	OPENBLAS_NUM_THREADS=1 test/bench/build/bench_scorer $(BENCH_ARGS)

# The core without PostgreSQL, for embedding it elsewhere: link with -lopenblas -lm -pthread.
CORE_LIB = build/libuserseq_core.a
CORE_LIB_OBJS = $(CORE_SRCS:src/core/%.c=build/core/%.o)
.PHONY: core-lib
core-lib: $(CORE_LIB)
build/core/%.o: src/core/%.c $(CORE_HEADERS)
	@mkdir -p build/core
	$(CC) $(CORE_CFLAGS) -c -o $@ $<
$(CORE_LIB): $(CORE_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

# The limit of folded scoring (a bare gather-and-add loop at -O3 -march=native) next to the core
# scorer built as the extension builds it (-O2 -march=native); BENCH_ARGS = "RUNS N [TSV]".
# test/bench/limit_bench.sh adds SQL scoring. (-O3 for conv.c / scorer.c was measured: no gain.)
bench-limit:
	@mkdir -p test/bench/build
	$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L -O3 -march=native -Iinclude -Wall -Wextra -Werror \
		-c -o test/bench/build/bench_limit.o test/bench/bench_limit.c
	$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -g -march=native -Iinclude -Wall -Wextra -Werror \
		-o test/bench/build/bench_limit test/bench/build/bench_limit.o $(CORE_SRCS) -lopenblas -lm -pthread
	OPENBLAS_NUM_THREADS=1 test/bench/build/bench_limit $(BENCH_ARGS)

# The core against test/bench/torch_textcnn.py bench: core_train reads the same TSV format;
# core_vs_torch.sh generates the data, alternates the two systems and prints medians.
CORE_TRAIN = test/bench/build/core_train
.PHONY: core-train bench-torch
core-train: $(CORE_TRAIN)
$(CORE_TRAIN): test/bench/core_train.c test/bench/bench_common.h $(CORE_SRCS) $(CORE_HEADERS)
	@mkdir -p test/bench/build
	$(CC) $(CORE_CFLAGS) -o $@ $< $(CORE_SRCS) -lopenblas -lm
bench-torch: $(CORE_TRAIN)
	bash test/bench/core_vs_torch.sh
