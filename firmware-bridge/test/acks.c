/* Acks (PROTOCOL.md section 4), the device's receiving side: frame checks, the fixed body layout,
 * and the byte-at-a-time receiver resynchronising after garbage, as the gateway's parser does. */
#include "harness.h"

static void test_parse(void)
{
    uint8_t f[EDGEFWD_ACK_FRAME_MAX];
    size_t len = 0;
    char id[65];
    uint64_t seq = 0;
    int rc;
    /* 01 03 | 08 "sensor-1" | seq LE | CRC32C LE */
    static const char want_hex[] = "01 03 08 73656e736f722d31 0201000000000000";
    uint8_t want[64];
    size_t want_len = hex_to_bytes(want_hex, want, sizeof want);
    rc = edgefwd_encode_ack("sensor-1", 258, f, sizeof f, &len);
    CHECK_RC(rc, EDGEFWD_OK, "encode ack");
    CHECK_BYTES("ack layout", f, len - 4, want, want_len);
    rc = edgefwd_parse_ack(f, len, id, sizeof id, &seq);
    CHECK_RC(rc, EDGEFWD_OK, "parse ack");
    CHECK(strcmp(id, "sensor-1") == 0 && seq == 258, "ack round trip: %s %llu", id, (unsigned long long)seq);
    CHECK_RC(edgefwd_parse_ack(f, len, id, 8, &seq), EDGEFWD_E_BUFFER, "id buffer one byte short");
    CHECK_RC(edgefwd_parse_ack(f, len, id, 9, &seq), EDGEFWD_OK, "id buffer exactly long enough");
    CHECK_RC(edgefwd_parse_ack(f, len, NULL, 0, NULL), EDGEFWD_OK, "id and seq not wanted");
    f[5] ^= 1;
    CHECK_RC(edgefwd_parse_ack(f, len, id, sizeof id, &seq), EDGEFWD_E_CRC, "flipped bit");
    f[5] ^= 1;
    CHECK_RC(edgefwd_parse_ack(f, 5, id, sizeof id, &seq), EDGEFWD_E_FRAME, "shorter than 6 bytes");
    CHECK_RC(edgefwd_parse_ack(NULL, 0, id, sizeof id, &seq), EDGEFWD_E_FRAME, "no frame");

    /* Well-formed envelopes around a wrong body or type: rebuilt with a correct CRC each time. */
    {
        static const struct {
            const char *hex;
            int rc;
            const char *why;
        } bad[] = {
            {"02 03 01 64 0100000000000000", EDGEFWD_E_FRAME, "version 2"},
            {"01 01 01 64 0100000000000000", EDGEFWD_E_FRAME, "an event, not an ack"},
            {"01 83 01 64 0100000000000000", EDGEFWD_E_FRAME, "a tagged ack"},
            {"01 03 02 64 0100000000000000", EDGEFWD_E_FRAME, "id length past the seq"},
            {"01 03 01 64 01000000000000", EDGEFWD_E_FRAME, "seq of 7 bytes"},
            {"01 03 01 64 010000000000000000", EDGEFWD_E_FRAME, "a byte after the seq"},
            {"01 03 00 0100000000000000", EDGEFWD_E_FRAME, "empty id"},
            {"01 03 01 2f 0100000000000000", EDGEFWD_E_FRAME, "id '/'"},
            {"01 03", EDGEFWD_E_FRAME, "empty body"},
        };
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            uint8_t b[32];
            size_t n = hex_to_bytes(bad[i].hex, b, sizeof b);
            uint32_t crc = edgefwd_crc32c(0, b, n);
            b[n++] = (uint8_t)crc;
            b[n++] = (uint8_t)(crc >> 8);
            b[n++] = (uint8_t)(crc >> 16);
            b[n++] = (uint8_t)(crc >> 24);
            CHECK_RC(edgefwd_parse_ack(b, n, id, sizeof id, &seq), bad[i].rc, bad[i].why);
        }
    }
    CHECK_RC(edgefwd_encode_ack("bad id", 1, f, sizeof f, &len), EDGEFWD_E_INVALID, "ack for a bad id");
    {
        static const char id64[] = "0123456789012345678901234567890123456789012345678901234567890123";
        CHECK_RC(edgefwd_encode_ack(id64, UINT64_MAX, f, sizeof f, &len), EDGEFWD_OK, "largest ack");
        CHECK(len == EDGEFWD_ACK_FRAME_MAX, "EDGEFWD_ACK_FRAME_MAX is the largest ack");
        CHECK_RC(edgefwd_parse_ack(f, len, id, sizeof id, &seq), EDGEFWD_OK, "largest ack parses");
        CHECK(seq == UINT64_MAX && strcmp(id, id64) == 0, "largest ack round trip");
    }
}

static int feed(edgefwd_ack_rx_t *rx, const uint8_t *p, size_t n, char *id, uint64_t *seq, int *errors)
{
    int acks = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        int rc = edgefwd_ack_rx_push(rx, p[i], id, 65, seq);
        if (rc == 1) acks++;
        else if (rc < 0) (*errors)++;
    }
    return acks;
}

static void test_receiver(void)
{
    edgefwd_ack_rx_t rx;
    uint8_t frame[EDGEFWD_ACK_FRAME_MAX], wire[EDGEFWD_COBS_MAX(EDGEFWD_ACK_FRAME_MAX)], junk[300];
    size_t len = 0, wire_len = 0, i;
    char id[65];
    uint64_t seq = 0;
    int errors = 0;
    memset(&rx, 0, sizeof rx);
    edgefwd_encode_ack("pump-3", 41, frame, sizeof frame, &len);
    edgefwd_cobs_encode(frame, len, wire, sizeof wire, &wire_len);
    CHECK(feed(&rx, wire, wire_len, id, &seq, &errors) == 1 && errors == 0, "one ack");
    CHECK(seq == 41 && strcmp(id, "pump-3") == 0, "its id and seq");
    /* Leading delimiters, garbage, a long run with no delimiter, then a good ack. */
    for (i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i % 251 + 1);
    CHECK(feed(&rx, (const uint8_t *)"\0\0", 2, id, &seq, &errors) == 0 && errors == 0, "empty frames are ignored");
    CHECK(feed(&rx, junk, 20, id, &seq, &errors) == 0, "garbage: no ack yet");
    CHECK(feed(&rx, (const uint8_t *)"\0", 1, id, &seq, &errors) == 0 && errors == 1, "garbage: one error");
    CHECK(feed(&rx, junk, sizeof junk, id, &seq, &errors) == 0, "a long run");
    errors = 0;
    CHECK(feed(&rx, (const uint8_t *)"\0", 1, id, &seq, &errors) == 0 && errors == 1, "oversize: one error");
    edgefwd_encode_ack("pump-3", 42, frame, sizeof frame, &len);
    edgefwd_cobs_encode(frame, len, wire, sizeof wire, &wire_len);
    errors = 0;
    CHECK(feed(&rx, wire, wire_len, id, &seq, &errors) == 1 && errors == 0 && seq == 42, "resynchronised");
    wire[3] ^= 0x40;
    CHECK(feed(&rx, wire, wire_len, id, &seq, &errors) == 0 && errors == 1, "a corrupted ack is an error");
    CHECK_RC(edgefwd_ack_rx_push(NULL, 0, id, sizeof id, &seq), EDGEFWD_E_INVALID, "NULL receiver");
}

void test_acks(void)
{
    test_parse();
    test_receiver();
}
