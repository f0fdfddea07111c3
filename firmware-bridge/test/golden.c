/* The golden vectors of test/vectors/ (PROTOCOL.md section 8), compiled in as a header by
 * tools/gen-vectors-h.mjs. Every vector with an input is encoded and compared byte for byte with
 * its .bin (a stream vector through both edgefwd_cobs_encode and the streaming writers); every
 * vector is also run through the device-side decoder (COBS, envelope, ack) where the reason is one
 * the device side can tell (bad_cobs, bad_crc, bad_version, oversize, a short frame). */
#include "harness.h"

enum { GV_NONE = 0, GV_EVENT, GV_HELLO, GV_ACK };

/* What the gateway must make of one frame: accept it, or reject it for `reason`. */
typedef struct {
    int ok;
    const char *reason;
} golden_outcome_t;

typedef struct {
    const char *name;
    int datagram;
    const uint8_t *file;
    size_t file_len;
    int expect_ok;      /* the first (for most vectors the only) outcome */
    const char *reason;
    const golden_outcome_t *outcomes; /* one per frame of the file */
    size_t outcomes_len;
    int input;
    const uint8_t *key;
    size_t key_len;
    edgefwd_event_t event;
    edgefwd_hello_t hello;
    const char *ack_id;
    uint64_t ack_seq;
} golden_t;

#include "vectors.h" /* generated into the build directory */

static int encode_input(const golden_t *v, uint8_t *out, size_t cap, size_t *len)
{
    switch (v->input) {
    case GV_EVENT: return edgefwd_encode_event(&v->event, v->key, v->key_len, out, cap, len);
    case GV_HELLO: return edgefwd_encode_hello(&v->hello, v->key, v->key_len, out, cap, len);
    default: return edgefwd_encode_ack(v->ack_id, v->ack_seq, out, cap, len);
    }
}

static int stream_input(const golden_t *v, sink_t *s)
{
    switch (v->input) {
    case GV_EVENT: return edgefwd_write_event(&v->event, v->key, v->key_len, sink_write, s);
    case GV_HELLO: return edgefwd_write_hello(&v->hello, v->key, v->key_len, sink_write, s);
    default: return -100; /* acks have no streaming writer: the gateway sends them */
    }
}

static int rc_for_reason(const char *reason)
{
    if (strcmp(reason, "bad_field") == 0) return EDGEFWD_E_INVALID;
    if (strcmp(reason, "oversize") == 0) return EDGEFWD_E_TOO_LARGE;
    return 1; /* a reason only the gateway can give (bad_auth, unknown_device, ...) */
}

/* Returns 1 if reproduced byte for byte, 0 if refused as the vector expects, 2 if this build
 * cannot encode it (no HMAC, or a small EDGEFWD_MAX_FRAME_SIZE), -1 on a mismatch. */
static int check_input(const golden_t *v)
{
    static uint8_t frame[EDGEFWD_MAX_FRAME_SIZE], wire[EDGEFWD_COBS_MAX(EDGEFWD_MAX_FRAME_SIZE)];
    size_t len = 0, wire_len = 0;
    int rc = encode_input(v, frame, sizeof frame, &len);
    if (!v->expect_ok && rc == rc_for_reason(v->reason)) return 0;
    if (v->key != NULL && rc == EDGEFWD_E_UNSUPPORTED) return 2;
    if (EDGEFWD_MAX_FRAME_SIZE < 16384u && rc == EDGEFWD_E_TOO_LARGE) return 2;
    if (rc != EDGEFWD_OK) {
        CHECK(0, "vector %s: encoding failed: %s", v->name, edgefwd_strerror(rc));
        return -1;
    }
    if (v->datagram) {
        CHECK_BYTES(v->name, frame, len, v->file, v->file_len);
        return len == v->file_len && memcmp(frame, v->file, len) == 0 ? 1 : -1;
    }
    rc = edgefwd_cobs_encode(frame, len, wire, sizeof wire, &wire_len);
    CHECK_RC(rc, EDGEFWD_OK, v->name);
    CHECK_BYTES(v->name, wire, wire_len, v->file, v->file_len);
    if (wire_len != v->file_len || memcmp(wire, v->file, wire_len) != 0) return -1;
    if (v->input != GV_ACK) {
        sink_t s;
        memset(&s, 0, sizeof s);
        rc = stream_input(v, &s);
        CHECK_RC(rc, EDGEFWD_OK, v->name);
        CHECK_BYTES("streaming writer", s.buf, s.len, v->file, v->file_len);
        rc = (s.len == v->file_len && memcmp(s.buf, v->file, s.len) == 0) ? 1 : -1;
        sink_free(&s);
        return rc;
    }
    return 1;
}

/* What the device-side decoder says about one raw frame: 0 or an EDGEFWD_E_* code. */
static int decode_frame(const uint8_t *f, size_t n)
{
    uint8_t type = 0;
    int rc = edgefwd_frame_check(f, n, &type, NULL, NULL);
    if (rc == 0 && (type & 0x7Fu) == EDGEFWD_TYPE_ACK) rc = edgefwd_parse_ack(f, n, NULL, 0, NULL);
    return rc;
}

/* The device side can tell some reasons from the bytes; the others (a body rule, bad_auth, an
 * unknown type) need a full decoder or the gateway's configuration.
 * Returns 1 if the outcome agrees, 0 if the device side cannot tell, -1 if it disagrees. */
static int agree(const golden_outcome_t *want, int rc)
{
    if (EDGEFWD_MAX_FRAME_SIZE < 16384u && rc == EDGEFWD_E_TOO_LARGE) return 0; /* a small build */
    if (want->ok) return rc == 0 ? 1 : -1;
    if (strcmp(want->reason, "bad_cobs") == 0) return rc == EDGEFWD_E_COBS ? 1 : -1;
    if (strcmp(want->reason, "bad_crc") == 0) return rc == EDGEFWD_E_CRC ? 1 : -1;
    if (strcmp(want->reason, "bad_version") == 0) return rc == EDGEFWD_E_FRAME ? 1 : -1;
    if (strcmp(want->reason, "oversize") == 0) return rc == EDGEFWD_E_TOO_LARGE ? 1 : -1;
    /* bad_field: a frame too short or an ack with a bad layout the envelope check sees; a body
     * rule it does not (0). Anything else is gateway state: only a CRC or COBS error disagrees. */
    if (strcmp(want->reason, "bad_field") == 0 && rc == EDGEFWD_E_FRAME) return 1;
    return (rc == EDGEFWD_E_CRC || rc == EDGEFWD_E_COBS || rc == EDGEFWD_E_TOO_LARGE) ? -1 : 0;
}

/* Runs every frame of the vector through the device-side decoder and compares each outcome.
 * Returns 1 if all agree and at least one was decidable, 0 if none was, -1 on a disagreement. */
static int check_decode(const golden_t *v)
{
    static uint8_t buf[EDGEFWD_COBS_MAX(EDGEFWD_MAX_FRAME_SIZE) + 64];
    size_t start = 0, i, n, frame = 0;
    int result = 0;
    if (v->datagram) {
        int rc = decode_frame(v->file, v->file_len), a = agree(&v->outcomes[0], rc);
        CHECK(a >= 0, "vector %s: the device-side decoder says %s", v->name, edgefwd_strerror(rc));
        return a;
    }
    for (i = 0; i <= v->file_len; i++) {
        int rc, a;
        if (i < v->file_len && v->file[i] != 0) continue;
        if (i == start) { /* an empty frame between delimiters: ignored */
            start = i + 1;
            continue;
        }
        if (i == v->file_len) {
            CHECK(0, "vector %s: stream file does not end with 0x00", v->name);
            return -1;
        }
        rc = edgefwd_cobs_decode(v->file + start, i - start, buf, sizeof buf, &n);
        if (rc == EDGEFWD_E_BUFFER) rc = EDGEFWD_E_TOO_LARGE;
        if (rc == 0) rc = decode_frame(buf, n);
        if (frame >= v->outcomes_len) {
            CHECK(0, "vector %s: more frames than expected outcomes", v->name);
            return -1;
        }
        a = agree(&v->outcomes[frame], rc);
        CHECK(a >= 0, "vector %s, frame %lu: the device-side decoder says %s", v->name, (unsigned long)frame,
              edgefwd_strerror(rc));
        if (a < 0) return -1;
        if (a > 0) result = 1;
        frame++;
        start = i + 1;
    }
    CHECK(frame == v->outcomes_len, "vector %s: %lu frames, %lu expected", v->name, (unsigned long)frame,
          (unsigned long)v->outcomes_len);
    return frame == v->outcomes_len ? result : -1;
}

void test_golden(void)
{
    size_t i, with_input = 0, reproduced = 0, refused_inputs = 0, refused_ok = 0, decode_checked = 0, skipped = 0;
    for (i = 0; i < golden_count; i++) {
        const golden_t *v = &golden_vectors[i];
        int r;
        if (check_decode(v) != 0) decode_checked++;
        if (v->input == GV_NONE) continue;
        r = check_input(v);
        if (r == 2) {
            skipped++;
        } else if (v->expect_ok) {
            with_input++;
            if (r == 1) reproduced++;
        } else {
            refused_inputs++;
            if (r >= 0) refused_ok++;
        }
    }
    if (!GOLDEN_PRESENT) {
        printf("golden vectors: NONE (%s not found)\n", GOLDEN_SOURCE);
        return;
    }
    printf("golden vectors: %lu/%lu reproduced byte for byte; %lu/%lu inputs the gateway rejects handled; "
           "%lu/%lu vectors checked by the device-side decoder",
           (unsigned long)reproduced, (unsigned long)with_input, (unsigned long)refused_ok,
           (unsigned long)refused_inputs, (unsigned long)decode_checked, (unsigned long)golden_count);
    if (skipped > 0) printf("; %lu not encodable in this build (no HMAC or a smaller maximum frame)", (unsigned long)skipped);
    printf("\n");
}
