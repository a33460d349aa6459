/*
 * us_vectorize.h: code generation for the files of src/core whose row loops (adds, maxima and
 * axpys over F or E floats) must vectorise: nn.c, heads.c and train.c. Include it after the system
 * headers and before any function definition of the file.
 *
 * PostgreSQL builds with -O2, where gcc 12 only vectorises loops whose trip count it knows, and
 * gcc 12 maps -march=native on recent AMD cores to znver1 tuning, which uses 128-bit vectors.
 * Both cost about 2x in training speed, so these files ask for O3 and 256-bit vectors; no FP
 * traps are used, and without -fno-trapping-math gcc will not if-convert float compares.
 */
#ifndef USERSEQ_US_VECTORIZE_H
#define USERSEQ_US_VECTORIZE_H

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "no-trapping-math")
#ifdef __AVX2__
#pragma GCC target("prefer-vector-width=256")
#endif
#endif

#endif
