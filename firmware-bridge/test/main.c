/* Host test runner: `host-test` runs every suite; `host-test --dump-protobuf` prints the protobuf
 * cases for the protoc cross-check (tools/protoc-check.mjs). Exit status 0 only if all passed. */
#include "harness.h"

unsigned long harness_checks = 0;
unsigned long harness_failures = 0;

void print_hex(FILE *f, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) fprintf(f, "%02x", p[i]);
}

void check_bytes(const char *file, int line, const char *what, const uint8_t *got, size_t got_len,
                 const uint8_t *want, size_t want_len)
{
    harness_checks++;
    if (got_len == want_len && (want_len == 0 || memcmp(got, want, want_len) == 0)) return;
    harness_failures++;
    fprintf(stderr, "FAIL %s:%d: %s: bytes differ\n  got  (%lu): ", file, line, what,
            (unsigned long)got_len);
    print_hex(stderr, got, got_len);
    fprintf(stderr, "\n  want (%lu): ", (unsigned long)want_len);
    print_hex(stderr, want, want_len);
    fputc('\n', stderr);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t hex_to_bytes(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *hex != '\0'; hex++) {
        int d = hex_digit(*hex);
        if (d < 0) continue;
        if (hi < 0) {
            hi = d;
        } else {
            if (n >= cap) {
                fprintf(stderr, "hex_to_bytes: output too small\n");
                exit(2);
            }
            out[n++] = (uint8_t)(hi * 16 + d);
            hi = -1;
        }
    }
    return n;
}

int sink_write(void *ctx, const uint8_t *p, size_t n)
{
    sink_t *s = (sink_t *)ctx;
    s->calls++;
    if (s->len + n > s->cap) {
        size_t cap = s->cap == 0 ? 256 : s->cap;
        uint8_t *b;
        while (cap < s->len + n) cap *= 2;
        b = (uint8_t *)realloc(s->buf, cap);
        if (b == NULL) return -1;
        s->buf = b;
        s->cap = cap;
    }
    if (n > 0) memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

void sink_free(sink_t *s)
{
    free(s->buf);
    memset(s, 0, sizeof *s);
}

int flaky_write(void *ctx, const uint8_t *p, size_t n)
{
    flaky_t *f = (flaky_t *)ctx;
    size_t room;
    if (f->failed) {
        f->calls_after_failure++;
        return -1;
    }
    room = f->budget - f->len;
    if (n > room) {
        if (room > 0) memcpy(f->buf + f->len, p, room);
        f->len += room;
        f->failed = 1;
        return -1;
    }
    if (n > 0) memcpy(f->buf + f->len, p, n);
    f->len += n;
    return 0;
}

void check_flaky(const char *what, produce_fn produce, const void *arg, const uint8_t *expected,
                 size_t expected_len)
{
    size_t budget;
    unsigned long bad = 0;
    for (budget = 0; budget <= expected_len; budget++) {
        flaky_t f;
        int rc;
        memset(&f, 0, sizeof f);
        f.budget = budget;
        f.buf = (uint8_t *)malloc(budget == 0 ? 1 : budget);
        rc = produce(arg, flaky_write, &f);
        if (budget < expected_len) {
            if (rc != EDGEFWD_E_WRITE || f.calls_after_failure != 0 || f.len != budget ||
                memcmp(f.buf, expected, budget) != 0) {
                if (bad++ < 3) {
                    fprintf(stderr, "FAIL %s: stream failing after %lu of %lu bytes: rc %s, %lu calls after failure, %lu bytes delivered\n",
                            what, (unsigned long)budget, (unsigned long)expected_len,
                            edgefwd_strerror(rc), f.calls_after_failure, (unsigned long)f.len);
                }
            }
        } else if (rc != EDGEFWD_OK || f.len != expected_len || memcmp(f.buf, expected, expected_len) != 0) {
            if (bad++ < 3) fprintf(stderr, "FAIL %s: with room for the whole frame: rc %s\n", what, edgefwd_strerror(rc));
        }
        free(f.buf);
    }
    harness_checks++;
    if (bad > 0) harness_failures++;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--dump-protobuf") == 0) {
        dump_protobuf_cases(stdout);
        return 0;
    }
    test_known_answers();
    test_cobs();
    test_rules();
    test_limits();
    test_streams();
    test_acks();
    test_golden();
    printf("checks: %lu, failures: %lu (max frame %lu, HMAC %s)\n", harness_checks, harness_failures,
           (unsigned long)EDGEFWD_MAX_FRAME_SIZE,
#ifdef EDGEFWD_WITH_HMAC
           "on"
#else
           "off"
#endif
    );
    return harness_failures == 0 ? 0 : 1;
}
