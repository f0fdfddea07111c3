/* COBS: the examples of Cheshire & Baker as tabulated on Wikipedia, decode errors, in-place decode,
 * and three encoders that must agree byte for byte (buffer, zero-copy stream, streaming sink). */
#include "harness.h"

typedef struct {
    const char *in;  /* hex; "01..fe" style ranges are built in code */
    const char *out; /* hex, with the 0x00 delimiter */
} cobs_case_t;

static const cobs_case_t cobs_cases[] = {
    {"", "01 00"},
    {"00", "01 01 00"},
    {"00 00", "01 01 01 00"},
    {"00 11 00", "01 02 11 01 00"},
    {"11 22 00 33", "03 11 22 02 33 00"},
    {"11 22 33 44", "05 11 22 33 44 00"},
    {"11 00 00 00", "02 11 01 01 01 00"},
};

/* The long examples: a run of 254 non-zero bytes around the block limit. */
static size_t build_long(int which, uint8_t *in, uint8_t *out, size_t *out_len)
{
    size_t i, n = 0, o = 0;
    switch (which) {
    case 0: /* 01..FE -> FF 01..FE (no trailing empty block) */
        for (i = 1; i <= 254; i++) in[n++] = (uint8_t)i;
        out[o++] = 0xFF;
        for (i = 1; i <= 254; i++) out[o++] = (uint8_t)i;
        break;
    case 1: /* 00 01..FE -> 01 FF 01..FE */
        in[n++] = 0;
        for (i = 1; i <= 254; i++) in[n++] = (uint8_t)i;
        out[o++] = 0x01;
        out[o++] = 0xFF;
        for (i = 1; i <= 254; i++) out[o++] = (uint8_t)i;
        break;
    case 2: /* 01..FF -> FF 01..FE 02 FF */
        for (i = 1; i <= 255; i++) in[n++] = (uint8_t)i;
        out[o++] = 0xFF;
        for (i = 1; i <= 254; i++) out[o++] = (uint8_t)i;
        out[o++] = 0x02;
        out[o++] = 0xFF;
        break;
    case 3: /* 02..FF 00 -> FF 02..FF 01 01 */
        for (i = 2; i <= 255; i++) in[n++] = (uint8_t)i;
        in[n++] = 0;
        out[o++] = 0xFF;
        for (i = 2; i <= 255; i++) out[o++] = (uint8_t)i;
        out[o++] = 0x01;
        out[o++] = 0x01;
        break;
    default: /* 03..FF 00 01 -> FE 03..FF 02 01 */
        for (i = 3; i <= 255; i++) in[n++] = (uint8_t)i;
        in[n++] = 0;
        in[n++] = 1;
        out[o++] = 0xFE;
        for (i = 3; i <= 255; i++) out[o++] = (uint8_t)i;
        out[o++] = 0x02;
        out[o++] = 0x01;
        break;
    }
    out[o++] = 0x00;
    *out_len = o;
    return n;
}

typedef struct {
    const uint8_t *in;
    size_t len;
} span_t;

static int produce_stream_frame(const void *arg, edgefwd_write_fn write, void *ctx)
{
    const span_t *s = (const span_t *)arg;
    return edgefwd_write_stream_frame(s->in, s->len, write, ctx);
}

static int produce_cobs_push(const void *arg, edgefwd_write_fn write, void *ctx)
{
    const span_t *s = (const span_t *)arg;
    return edgefwd_test_cobs_push(s->in, s->len, write, ctx);
}

/* One input through every encoder and back through the decoder. */
static void check_cobs(const char *what, const uint8_t *in, size_t len, const uint8_t *want, size_t want_len)
{
    uint8_t *out = (uint8_t *)malloc(EDGEFWD_COBS_MAX(len));
    uint8_t *back = (uint8_t *)malloc(len + 1);
    size_t out_len = 0, back_len = 0, cap;
    sink_t a, b;
    span_t span;
    int rc;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    rc = edgefwd_cobs_encode(in, len, out, EDGEFWD_COBS_MAX(len), &out_len);
    CHECK_RC(rc, EDGEFWD_OK, what);
    if (want != NULL) CHECK_BYTES(what, out, out_len, want, want_len);
    CHECK(out_len <= EDGEFWD_COBS_MAX(len), "%s: within EDGEFWD_COBS_MAX", what);
    CHECK(memchr(out, 0, out_len - 1) == NULL && out[out_len - 1] == 0, "%s: one zero, at the end", what);
    CHECK_RC(edgefwd_write_stream_frame(in, len, sink_write, &a), EDGEFWD_OK, what);
    CHECK_BYTES("zero-copy stream encoder", a.buf, a.len, out, out_len);
    CHECK_RC(edgefwd_test_cobs_push(in, len, sink_write, &b), EDGEFWD_OK, what);
    CHECK_BYTES("streaming sink encoder", b.buf, b.len, out, out_len);
    rc = edgefwd_cobs_decode(out, out_len, back, len + 1, &back_len);
    CHECK_RC(rc, EDGEFWD_OK, what);
    CHECK_BYTES("decode(encode(x)) == x", back, back_len, in, len);
    /* Decoding in place, without the delimiter this time. */
    rc = edgefwd_cobs_decode(out, out_len - 1, out, out_len - 1, &back_len);
    CHECK(rc == EDGEFWD_OK && back_len == len && (len == 0 || memcmp(out, in, len) == 0), "%s: in place", what);
    /* Every output capacity too small: an error, never a write past the (exactly sized) buffer. */
    for (cap = 0; cap < out_len && out_len < 600; cap++) {
        uint8_t *tight = (uint8_t *)malloc(cap == 0 ? 1 : cap);
        size_t n = 7;
        rc = edgefwd_cobs_encode(in, len, cap == 0 ? NULL : tight, cap, &n);
        if (rc != EDGEFWD_E_BUFFER || n != 0) CHECK(0, "%s: cobs_encode with cap %lu: %s", what, (unsigned long)cap, edgefwd_strerror(rc));
        free(tight);
    }
    for (cap = 0; cap < len && len < 600; cap++) {
        uint8_t *tight = (uint8_t *)malloc(cap == 0 ? 1 : cap);
        size_t n = 7;
        rc = edgefwd_cobs_decode(out_len > 0 ? a.buf : NULL, a.len, cap == 0 ? NULL : tight, cap, &n);
        if (rc != EDGEFWD_E_BUFFER) CHECK(0, "%s: cobs_decode with cap %lu: %s", what, (unsigned long)cap, edgefwd_strerror(rc));
        free(tight);
    }
    if (len < 600) {
        span.in = in;
        span.len = len;
        check_flaky("write_stream_frame", produce_stream_frame, &span, a.buf, a.len);
        check_flaky("streaming sink", produce_cobs_push, &span, a.buf, a.len);
    }
    sink_free(&a);
    sink_free(&b);
    free(out);
    free(back);
}

static void test_cobs_errors(void)
{
    static const struct {
        const char *hex;
        int rc;
        const char *why;
    } bad[] = {
        {"05 11 22", EDGEFWD_E_COBS, "a block running past the end"},
        {"02 11 00 01", EDGEFWD_E_COBS, "a zero inside the frame"},
        {"03 11 00", EDGEFWD_E_COBS, "a zero inside a block before the delimiter"},
        {"ff 01", EDGEFWD_E_COBS, "a full block cut short"},
    };
    uint8_t in[16], out[16];
    size_t i, n, out_len;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = hex_to_bytes(bad[i].hex, in, sizeof in);
        CHECK_RC(edgefwd_cobs_decode(in, n, out, sizeof out, &out_len), bad[i].rc, bad[i].why);
    }
    CHECK_RC(edgefwd_cobs_decode(in, 0, out, sizeof out, &out_len), EDGEFWD_OK, "empty input");
    CHECK(out_len == 0, "empty input decodes to nothing");
    CHECK_RC(edgefwd_cobs_decode(NULL, 3, out, sizeof out, &out_len), EDGEFWD_E_INVALID, "NULL input");
    CHECK_RC(edgefwd_cobs_encode(NULL, 3, out, sizeof out, &out_len), EDGEFWD_E_INVALID, "NULL input");
    CHECK_RC(edgefwd_write_stream_frame(in, 3, NULL, NULL), EDGEFWD_E_INVALID, "NULL write callback");
}

void test_cobs(void)
{
    uint8_t in[600], want[700];
    size_t i, n, want_len;
    uint32_t x = 0x9E3779B9u;
    for (i = 0; i < sizeof cobs_cases / sizeof cobs_cases[0]; i++) {
        n = hex_to_bytes(cobs_cases[i].in, in, sizeof in);
        want_len = hex_to_bytes(cobs_cases[i].out, want, sizeof want);
        check_cobs(cobs_cases[i].in, in, n, want, want_len);
    }
    for (i = 0; i < 5; i++) {
        n = build_long((int)i, in, want, &want_len);
        check_cobs("254-byte runs", in, n, want, want_len);
    }
    /* Random inputs with few zeros, lengths around one and two full blocks. */
    for (i = 0; i < 300; i++) {
        size_t k;
        n = (i < 40) ? 230 + i : (i < 80 ? 470 + i : i + 1);
        if (n > sizeof in) n = sizeof in;
        for (k = 0; k < n; k++) {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            in[k] = (x % 97 == 0) ? 0 : (uint8_t)(x | 1u);
        }
        check_cobs("random", in, n, NULL, 0);
    }
    test_cobs_errors();
}
