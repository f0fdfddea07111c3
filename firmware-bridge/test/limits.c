/* Frame-size limits and caller buffers: the sizing pass equals the encoded length, an oversize
 * event is refused before anything is read past what could fit, and a too-small buffer (allocated
 * to the exact capacity, so ASan sees any overflow) gets EDGEFWD_E_BUFFER and stays untouched. */
#include "harness.h"

static uint8_t big_raw[EDGEFWD_MAX_FRAME_SIZE + 100];
static edgefwd_tag_t full_tags[8];
static char full_keys[8][33], full_values[8][65];
static const char id64[] = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
static const char stream64[] = "ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss";

static edgefwd_event_t raw_event(size_t raw_len)
{
    edgefwd_event_t e;
    memset(&e, 0, sizeof e);
    e.device_id = "sensor-1";
    e.seq = 1;
    e.value_kind = EDGEFWD_VALUE_RAW;
    e.raw = big_raw;
    e.raw_len = raw_len;
    return e;
}

/* The largest event the rules allow: every field at its maximum. */
static edgefwd_event_t largest_event(void)
{
    edgefwd_event_t e = raw_event(EDGEFWD_RAW_MAX);
    size_t i;
    e.device_id = id64;
    e.seq = EDGEFWD_SEQ_MAX;
    e.has_device_time = true;
    e.device_time_ms = EDGEFWD_SEQ_MAX;
    e.has_uptime = true;
    e.uptime_ms = EDGEFWD_SEQ_MAX;
    e.priority = 3;
    e.stream = stream64;
    for (i = 0; i < 8; i++) { /* keys of 32 bytes, values of 64: the maxima */
        memset(full_keys[i], 'k', 32);
        memset(full_values[i], 'v', 64);
        full_keys[i][0] = (char)('0' + i);
        full_tags[i].key = full_keys[i];
        full_tags[i].value = full_values[i];
    }
    e.tags = full_tags;
    e.tags_len = 8;
    return e;
}

/* Every capacity below the frame length: E_BUFFER, the needed length reported, nothing written. */
static void check_tight_buffers(const char *what, const edgefwd_event_t *e, const uint8_t *key, size_t key_len)
{
    size_t size = edgefwd_event_frame_size(e, key != NULL), cap, step = size > 2000 ? 61 : 1;
    unsigned long bad = 0;
    for (cap = 0; cap < size; cap += (cap + step < size) ? step : 1) {
        uint8_t *out = (uint8_t *)malloc(cap == 0 ? 1 : cap);
        size_t len = 0, i;
        int rc, untouched = 1;
        if (cap > 0) memset(out, 0xA5, cap);
        rc = edgefwd_encode_event(e, key, key_len, cap == 0 ? NULL : out, cap, &len);
        for (i = 0; i < cap; i++) untouched &= out[i] == 0xA5;
        if (rc != EDGEFWD_E_BUFFER || len != size || !untouched) {
            if (bad++ < 3) CHECK(0, "%s: capacity %lu of %lu: %s, out_len %lu, untouched %d", what, (unsigned long)cap,
                                 (unsigned long)size, edgefwd_strerror(rc), (unsigned long)len, untouched);
        }
        free(out);
    }
    {
        uint8_t *out = (uint8_t *)malloc(size);
        size_t len = 0;
        CHECK_RC(edgefwd_encode_event(e, key, key_len, out, size, &len), EDGEFWD_OK, what);
        CHECK(len == size, "%s: exact capacity", what);
        free(out);
    }
    harness_checks++;
}

static void test_frame_size_boundary(void)
{
    edgefwd_event_t e;
    size_t r, at = 0, over = 0;
    /* Find the raw lengths whose frames are exactly the maximum and one byte more. */
    for (r = 0; r <= EDGEFWD_MAX_FRAME_SIZE; r++) {
        size_t s;
        e = raw_event(r);
        s = edgefwd_event_frame_size(&e, false);
        if (s == EDGEFWD_MAX_FRAME_SIZE) at = r;
        if (s == EDGEFWD_MAX_FRAME_SIZE + 1) over = r;
    }
    CHECK(at > 0 && over > 0, "found raw lengths for frames of max and max + 1 bytes");
    e = raw_event(at);
    {
        uint8_t *out = (uint8_t *)malloc(EDGEFWD_MAX_FRAME_SIZE);
        size_t len = 0;
        int rc = edgefwd_encode_event(&e, NULL, 0, out, EDGEFWD_MAX_FRAME_SIZE, &len);
        /* Exactly at the limit the size is fine; only the raw rule (8192 bytes) can still refuse. */
        CHECK_RC(rc, at > EDGEFWD_RAW_MAX ? EDGEFWD_E_INVALID : EDGEFWD_OK, "frame of exactly the maximum size");
        e = raw_event(over);
        rc = edgefwd_encode_event(&e, NULL, 0, out, EDGEFWD_MAX_FRAME_SIZE, &len);
        CHECK_RC(rc, EDGEFWD_E_TOO_LARGE, "frame one byte over the maximum");
        CHECK(len == 0, "nothing written");
        CHECK_RC(edgefwd_write_event(&e, NULL, 0, sink_write, NULL), EDGEFWD_E_TOO_LARGE,
                 "streaming refuses it before the first write (the sink here would crash)");
        free(out);
    }
    e = raw_event(EDGEFWD_MAX_FRAME_SIZE);
    CHECK(edgefwd_event_frame_size(&e, false) > EDGEFWD_MAX_FRAME_SIZE, "a raw value of max bytes is oversize");
    {
        size_t len;
        uint8_t out[16];
        CHECK_RC(edgefwd_encode_event(&e, NULL, 0, out, sizeof out, &len), EDGEFWD_E_TOO_LARGE,
                 "event over the maximum frame size");
    }
}

static void test_oversize_without_reading(void)
{
    /* Lengths far past anything that fits are refused from the lengths alone: the tiny arrays
     * behind them are never read past their end (ASan would see it). */
    static const uint8_t one[1] = {1};
    static const edgefwd_tag_t tag[1] = {{"k", "v"}};
    static const edgefwd_number_t num[1] = {{"k", 1}};
    edgefwd_event_t e = raw_event(0);
    uint8_t out[64];
    size_t len;
    e.raw = one;
    e.raw_len = SIZE_MAX / 2;
    CHECK_RC(edgefwd_encode_event(&e, NULL, 0, out, sizeof out, &len), EDGEFWD_E_TOO_LARGE, "raw_len SIZE_MAX/2");
    e.raw_len = SIZE_MAX;
    CHECK(edgefwd_event_frame_size(&e, true) == SIZE_MAX, "the size saturates");
    e = raw_event(0);
    e.tags = tag;
    e.tags_len = SIZE_MAX;
    CHECK_RC(edgefwd_encode_event(&e, NULL, 0, out, sizeof out, &len), EDGEFWD_E_TOO_LARGE, "tags_len SIZE_MAX");
    e = raw_event(0);
    e.value_kind = EDGEFWD_VALUE_NUMBERS;
    e.numbers = num;
    e.numbers_len = SIZE_MAX / 4;
    CHECK_RC(edgefwd_encode_event(&e, NULL, 0, out, sizeof out, &len), EDGEFWD_E_TOO_LARGE, "numbers_len huge");
    e = raw_event(0);
    e.value_kind = EDGEFWD_VALUE_TEXT;
    e.text = (const char *)one;
    e.text_len = SIZE_MAX - 3;
    CHECK_RC(edgefwd_encode_event(&e, NULL, 0, out, sizeof out, &len), EDGEFWD_E_TOO_LARGE, "text_len huge");
}

void test_limits(void)
{
    edgefwd_event_t e;
    size_t i;
    for (i = 0; i < sizeof big_raw; i++) big_raw[i] = (uint8_t)(i * 7u + 1u);
    e = largest_event();
    {
        size_t size = edgefwd_event_frame_size(&e, true);
        if (EDGEFWD_MAX_FRAME_SIZE >= 16384u) {
            uint8_t *out = (uint8_t *)malloc(size);
            size_t len = 0;
            int rc;
            CHECK(size < 16384u, "the largest valid event fits in 16384 bytes (%lu)", (unsigned long)size);
#ifdef EDGEFWD_WITH_HMAC
            rc = edgefwd_encode_event(&e, (const uint8_t *)id64, 64, out, size, &len);
#else
            rc = edgefwd_encode_event(&e, NULL, 0, out, size, &len);
            size -= EDGEFWD_TAG_LEN;
#endif
            CHECK_RC(rc, EDGEFWD_OK, "the largest valid event");
            CHECK(len == size, "its length is the sizing pass's");
            free(out);
        }
    }
    test_frame_size_boundary();
    test_oversize_without_reading();
    e = raw_event(40);
    check_tight_buffers("raw event", &e, NULL, 0);
    if (EDGEFWD_MAX_FRAME_SIZE >= 16384u) {
        e = largest_event();
        check_tight_buffers("largest event", &e, NULL, 0);
    }
#ifdef EDGEFWD_WITH_HMAC
    e = raw_event(40);
    check_tight_buffers("tagged raw event", &e, (const uint8_t *)id64, 32);
#endif
}
