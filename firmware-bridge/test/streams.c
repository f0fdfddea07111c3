/* Streaming: edgefwd_write_event / edgefwd_write_hello produce exactly COBS(encode(...)) + 0x00,
 * for random valid events (seeded, so a failure repeats), and survive a write callback that fails
 * after N bytes for every N: EDGEFWD_E_WRITE, no call after the failure, no crash. */
#include "harness.h"

static uint32_t rng = 0x2545F491u;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

#ifdef EDGEFWD_WITH_HMAC
static const uint8_t stream_key[32] = {0x42, 0x13, 0x37, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                       14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29};
#endif

typedef struct {
    edgefwd_event_t e;
    const uint8_t *key;
    size_t key_len;
    edgefwd_number_t numbers[4];
    edgefwd_tag_t tags[3];
    char id[16];
    uint8_t raw[700];
} random_event_t;

static const char *const names[] = {"t", "rh", "temp", "x", "y", "z", "\xc3\xa9t\xc3\xa9"};

static void make_random_event(random_event_t *r)
{
    edgefwd_event_t *e = &r->e;
    size_t i;
    memset(r, 0, sizeof *r);
    sprintf(r->id, "dev-%lu", (unsigned long)(next_rand() % 1000));
    e->device_id = r->id;
    e->seq = (next_rand() % 4 == 0) ? 0 : ((uint64_t)next_rand() << 21 ^ next_rand()) & EDGEFWD_SEQ_MAX;
    e->has_device_time = next_rand() % 2 == 0;
    e->device_time_ms = 1700000000000ull + next_rand();
    e->has_uptime = next_rand() % 2 == 0;
    e->uptime_ms = next_rand() % 3 == 0 ? 0 : next_rand();
    e->priority = (uint8_t)(next_rand() % 4);
    e->stream = next_rand() % 3 == 0 ? NULL : "telemetry";
    e->value_kind = (int)(next_rand() % 5);
    switch (e->value_kind) {
    case EDGEFWD_VALUE_NUMBER: {
        uint64_t bits = ((uint64_t)next_rand() << 32) | next_rand();
        memcpy(&e->number, &bits, sizeof bits);
        if (e->number != e->number) e->number = 0; /* any double but NaN, to compare simply */
        break;
    }
    case EDGEFWD_VALUE_NUMBERS:
        e->numbers_len = next_rand() % 4;
        for (i = 0; i < e->numbers_len; i++) {
            r->numbers[i].key = names[i * 2 + next_rand() % 2]; /* distinct */
            r->numbers[i].value = (double)(int32_t)next_rand() / 64.0;
        }
        e->numbers = r->numbers;
        break;
    case EDGEFWD_VALUE_TEXT:
        e->text = "hello, w\xc3\xb6rld";
        e->text_len = next_rand() % 15;
        if (e->text_len == 9) e->text_len = 10; /* not inside the two-byte character */
        break;
    case EDGEFWD_VALUE_RAW:
        /* Long non-zero runs, so frames cross COBS blocks of 254 at every offset. */
        e->raw_len = next_rand() % sizeof r->raw;
        for (i = 0; i < e->raw_len; i++) r->raw[i] = (next_rand() % 300 == 0) ? 0 : (uint8_t)(next_rand() | 1u);
        e->raw = r->raw;
        break;
    default:
        break;
    }
    e->tags_len = next_rand() % 4;
    for (i = 0; i < e->tags_len; i++) {
        r->tags[i].key = names[i];
        r->tags[i].value = (next_rand() % 2) ? "" : "plant-7";
    }
    e->tags = r->tags;
#ifdef EDGEFWD_WITH_HMAC
    if (next_rand() % 3 == 0) {
        r->key = stream_key;
        r->key_len = 16 + next_rand() % 17;
    }
#endif
}

static int produce_event(const void *arg, edgefwd_write_fn write, void *ctx)
{
    const random_event_t *r = (const random_event_t *)arg;
    return edgefwd_write_event(&r->e, r->key, r->key_len, write, ctx);
}

static int produce_hello(const void *arg, edgefwd_write_fn write, void *ctx)
{
    return edgefwd_write_hello((const edgefwd_hello_t *)arg, NULL, 0, write, ctx);
}

void test_streams(void)
{
    static random_event_t r;
    uint8_t frame[2048], cobs[2200];
    size_t i, flaky_runs = 0;
    edgefwd_hello_t h;
    for (i = 0; i < 3000; i++) {
        size_t len = 0, cobs_len = 0;
        sink_t s;
        int rc;
        memset(&s, 0, sizeof s);
        make_random_event(&r);
        rc = edgefwd_encode_event(&r.e, r.key, r.key_len, frame, sizeof frame, &len);
        if (rc == EDGEFWD_E_TOO_LARGE) continue; /* a small EDGEFWD_MAX_FRAME_SIZE build */
        CHECK_RC(rc, EDGEFWD_OK, "random event");
        if (rc != 0) continue;
        CHECK(len == edgefwd_event_frame_size(&r.e, r.key != NULL), "random event %lu: sizing pass", (unsigned long)i);
        CHECK_RC(edgefwd_frame_check(frame, len, NULL, NULL, NULL), EDGEFWD_OK, "random event: envelope");
        CHECK_RC(edgefwd_cobs_encode(frame, len, cobs, sizeof cobs, &cobs_len), EDGEFWD_OK, "cobs");
        CHECK_RC(edgefwd_write_event(&r.e, r.key, r.key_len, sink_write, &s), EDGEFWD_OK, "write_event");
        CHECK_BYTES("write_event == cobs(encode_event)", s.buf, s.len, cobs, cobs_len);
        CHECK(s.calls <= cobs_len / 254 + cobs_len / 2 + 2, "chunks, not bytes, where it can");
        if (i % 25 == 0) {
            check_flaky("write_event", produce_event, &r, cobs, cobs_len);
            flaky_runs++;
        }
        sink_free(&s);
    }
    CHECK(flaky_runs > 50, "flaky-stream runs: %lu", (unsigned long)flaky_runs);
    h.device_id = "sensor-1";
    h.firmware_version = "1.2.3";
    h.capabilities = EDGEFWD_CAP_ACKS;
    {
        size_t len = 0, cobs_len = 0;
        CHECK_RC(edgefwd_encode_hello(&h, NULL, 0, frame, sizeof frame, &len), EDGEFWD_OK, "hello");
        CHECK_RC(edgefwd_cobs_encode(frame, len, cobs, sizeof cobs, &cobs_len), EDGEFWD_OK, "cobs");
        check_flaky("write_hello", produce_hello, &h, cobs, cobs_len);
    }
    {
        /* An invalid event writes nothing at all. */
        sink_t s;
        edgefwd_event_t bad;
        memset(&s, 0, sizeof s);
        memset(&bad, 0, sizeof bad);
        bad.device_id = "no/slash";
        CHECK_RC(edgefwd_write_event(&bad, NULL, 0, sink_write, &s), EDGEFWD_E_INVALID, "invalid event streamed");
        CHECK(s.calls == 0, "no write for an invalid event");
        sink_free(&s);
    }
}
