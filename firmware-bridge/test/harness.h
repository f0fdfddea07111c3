/* A tiny test harness for the host tests: CHECK counts and reports, never aborts, so one run
 * lists every failure. The test binaries may allocate; the library never does. */
#ifndef EDGEFWD_TEST_HARNESS_H
#define EDGEFWD_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../edgefwd.h"

extern unsigned long harness_checks;
extern unsigned long harness_failures;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        harness_checks++;                                                                      \
        if (!(cond)) {                                                                         \
            harness_failures++;                                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
            if (strcmp(#cond, "0") != 0) fprintf(stderr, "%s: ", #cond);                       \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
        }                                                                                      \
    } while (0)

/* rc == want, naming both codes on failure. */
#define CHECK_RC(rc, want, what)                                                               \
    CHECK((rc) == (want), "%s: got %s, want %s", (what), edgefwd_strerror(rc), edgefwd_strerror(want))

/* Bytes equal, with both printed in hex on failure. */
void check_bytes(const char *file, int line, const char *what, const uint8_t *got, size_t got_len,
                 const uint8_t *want, size_t want_len);
#define CHECK_BYTES(what, got, got_len, want, want_len)                                         \
    check_bytes(__FILE__, __LINE__, (what), (got), (got_len), (want), (want_len))

/* Parse a hex string (spaces ignored) into out; returns the byte count. */
size_t hex_to_bytes(const char *hex, uint8_t *out, size_t cap);
void print_hex(FILE *f, const uint8_t *p, size_t n);

/* A write callback into a growable buffer (the test side may allocate). */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
    unsigned long calls;
} sink_t;
int sink_write(void *ctx, const uint8_t *p, size_t n);
void sink_free(sink_t *s);

/* A write callback that accepts `budget` bytes in all, then fails (after storing the part of the
 * failing chunk that still fitted), and counts any call made after it failed. */
typedef struct {
    uint8_t *buf; /* exactly `budget` bytes, so ASan sees any write past it */
    size_t len, budget;
    int failed;
    unsigned long calls_after_failure;
} flaky_t;
int flaky_write(void *ctx, const uint8_t *p, size_t n);

/* Runs `produce(arg, write, ctx)` against a flaky stream failing after every N in 0..len(expected)
 * and checks: EDGEFWD_E_WRITE for N < len, success for N == len, no call after a failure, and the
 * bytes delivered are a prefix of `expected`. */
typedef int (*produce_fn)(const void *arg, edgefwd_write_fn write, void *ctx);
void check_flaky(const char *what, produce_fn produce, const void *arg, const uint8_t *expected,
                 size_t expected_len);

/* Seams compiled into edgefwd.c with EDGEFWD_TEST_INTERNALS. */
uint64_t edgefwd_test_f32_to_f64(uint32_t f);
int edgefwd_test_cobs_push(const uint8_t *in, size_t len, edgefwd_write_fn write, void *ctx);

/* The suites (each file one). */
void test_known_answers(void);
void test_cobs(void);
void test_rules(void);
void test_limits(void);
void test_streams(void);
void test_acks(void);
/* Prints "golden vectors: R/N reproduced byte for byte; ..." (the TypeScript test reads it). */
void test_golden(void);
/* Prints every protobuf known-answer case as "name<TAB>message<TAB>hex<TAB>text format" for
 * tools/protoc-check.mjs. */
void dump_protobuf_cases(FILE *f);

#endif
