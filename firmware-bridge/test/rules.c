/* The field rules of PROTOCOL.md section 3, each on both sides of its boundary, and the key rules
 * of section 5. A refused event writes nothing. */
#include "harness.h"

static char text_buf[1100];
static edgefwd_number_t many_numbers[40];
static char number_keys[40][8];
static edgefwd_tag_t many_tags[10];
static char tag_keys[10][8];

static edgefwd_event_t base_event(void)
{
    edgefwd_event_t e;
    memset(&e, 0, sizeof e);
    e.device_id = "sensor-1";
    e.seq = 7;
    e.priority = EDGEFWD_PRIORITY_NORMAL;
    e.stream = "telemetry";
    e.value_kind = EDGEFWD_VALUE_NUMBER;
    e.number = 1.5;
    return e;
}

/* A string of n copies of c (in one of a few static buffers). */
static const char *repeat(char c, size_t n)
{
    static char bufs[4][1100];
    static int next = 0;
    char *b = bufs[next++ % 4];
    memset(b, c, n);
    b[n] = '\0';
    return b;
}

static void expect(const char *what, const edgefwd_event_t *e, int want)
{
    uint8_t out[EDGEFWD_MAX_FRAME_SIZE + 64];
    size_t len = 99;
    int rc, rule = want;
    /* The frame length is checked first, as the gateway does (a small EDGEFWD_MAX_FRAME_SIZE build
     * sees some of these as oversize). */
    if (edgefwd_event_frame_size(e, false) > EDGEFWD_MAX_FRAME_SIZE) want = EDGEFWD_E_TOO_LARGE;
    memset(out, 0xA5, 64);
    rc = edgefwd_encode_event(e, NULL, 0, out, sizeof out, &len);
    CHECK_RC(rc, want, what);
    if (want != EDGEFWD_OK) {
        size_t i;
        int untouched = 1;
        for (i = 0; i < 64; i++) untouched &= out[i] == 0xA5;
        CHECK(untouched && len == 0, "%s: nothing written on refusal", what);
    }
    CHECK_RC(edgefwd_event_check(e), rule, what);
}

static void test_device_id_and_scalars(void)
{
    static const char *bad_ids[] = {"", "a/b", "a+b", "a#b", "a b", "tab\tx", "del\x7f", "caf\xc3\xa9"};
    edgefwd_event_t e = base_event();
    size_t i;
    expect("base event", &e, EDGEFWD_OK);
    e.device_id = NULL;
    expect("no device id", &e, EDGEFWD_E_INVALID);
    for (i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        e.device_id = bad_ids[i];
        expect(bad_ids[i], &e, EDGEFWD_E_INVALID);
    }
    e.device_id = "!~-_.:@$%&*()=[]{}<>?,;'\"\\^`|";
    expect("every allowed punctuation", &e, EDGEFWD_OK);
    e.device_id = repeat('d', 64);
    expect("64-byte device id", &e, EDGEFWD_OK);
    e.device_id = repeat('d', 65);
    expect("65-byte device id", &e, EDGEFWD_E_INVALID);

    e = base_event();
    e.seq = EDGEFWD_SEQ_MAX;
    expect("seq 2^53-1", &e, EDGEFWD_OK);
    e.seq = EDGEFWD_SEQ_MAX + 1;
    expect("seq 2^53", &e, EDGEFWD_E_INVALID);
    e = base_event();
    e.has_device_time = true;
    e.device_time_ms = EDGEFWD_SEQ_MAX;
    e.has_uptime = true;
    e.uptime_ms = EDGEFWD_SEQ_MAX;
    expect("times 2^53-1", &e, EDGEFWD_OK);
    e.device_time_ms = EDGEFWD_SEQ_MAX + 1;
    expect("device time 2^53", &e, EDGEFWD_E_INVALID);
    e.device_time_ms = 0;
    e.uptime_ms = UINT64_MAX;
    expect("uptime 2^64-1", &e, EDGEFWD_E_INVALID);
    e.has_uptime = false;
    expect("a time not sent is not checked", &e, EDGEFWD_OK);
    e = base_event();
    e.priority = 3;
    expect("priority 3", &e, EDGEFWD_OK);
    e.priority = 4;
    expect("priority 4", &e, EDGEFWD_E_INVALID);
    e = base_event();
    e.stream = NULL;
    expect("no stream", &e, EDGEFWD_OK);
    e.stream = repeat('s', 64);
    expect("64-byte stream", &e, EDGEFWD_OK);
    e.stream = repeat('s', 65);
    expect("65-byte stream", &e, EDGEFWD_E_INVALID);
    e.stream = "with space";
    expect("stream with a space", &e, EDGEFWD_E_INVALID);
    e = base_event();
    e.value_kind = 5;
    expect("unknown value kind", &e, EDGEFWD_E_INVALID);
    CHECK(edgefwd_event_frame_size(&e, false) == 0, "unknown value kind has no size");
    CHECK(edgefwd_event_frame_size(NULL, false) == 0, "NULL event has no size");
    e.value_kind = -1;
    expect("negative value kind", &e, EDGEFWD_E_INVALID);
    e.value_kind = EDGEFWD_VALUE_NONE;
    expect("no value", &e, EDGEFWD_OK);
}

static void test_values(void)
{
    static const char *bad_utf8[] = {
        "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80", "\xff", "\xf8\x88\x80\x80\x80",
    };
    edgefwd_event_t e = base_event();
    size_t i;
    e.value_kind = EDGEFWD_VALUE_NUMBERS;
    for (i = 0; i < 40; i++) {
        sprintf(number_keys[i], "n%lu", (unsigned long)i);
        many_numbers[i].key = number_keys[i];
        many_numbers[i].value = (double)i / 4;
    }
    e.numbers = many_numbers;
    e.numbers_len = 32;
    expect("32 numbers", &e, EDGEFWD_OK);
    e.numbers_len = 33;
    expect("33 numbers", &e, EDGEFWD_E_INVALID);
    e.numbers_len = 2;
    many_numbers[1].key = "n0";
    expect("duplicate number name", &e, EDGEFWD_E_INVALID);
    many_numbers[1].key = "";
    expect("empty number name (section 3 sets no length; the gateway accepts it)", &e, EDGEFWD_OK);
    many_numbers[1].key = NULL;
    expect("NULL number name is the empty name", &e, EDGEFWD_OK);
    many_numbers[1].key = repeat('k', 200);
    expect("200-byte number name", &e, EDGEFWD_OK);
    many_numbers[1].key = "\xc3\xa9t\xc3\xa9";
    expect("UTF-8 number name", &e, EDGEFWD_OK);
    many_numbers[1].key = "\xc3";
    expect("broken UTF-8 number name", &e, EDGEFWD_E_INVALID);
    many_numbers[1].key = number_keys[1];
    e.numbers = NULL;
    expect("numbers NULL with a length", &e, EDGEFWD_E_INVALID);
    e.numbers_len = 0;
    expect("no numbers at all", &e, EDGEFWD_OK);

    e = base_event();
    e.value_kind = EDGEFWD_VALUE_TEXT;
    memset(text_buf, 'x', sizeof text_buf);
    e.text = text_buf;
    e.text_len = 1024;
    expect("1024-byte text", &e, EDGEFWD_OK);
    e.text_len = 1025;
    expect("1025-byte text", &e, EDGEFWD_E_INVALID);
    e.text = "a\0b";
    e.text_len = 3;
    expect("text with U+0000", &e, EDGEFWD_OK);
    e.text = "\xf0\x9f\x98\x80 \xe2\x82\xac \xc3\xa9";
    e.text_len = strlen(e.text);
    expect("4-, 3- and 2-byte UTF-8", &e, EDGEFWD_OK);
    for (i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        e.text = bad_utf8[i];
        e.text_len = strlen(bad_utf8[i]);
        expect("ill-formed UTF-8 text", &e, EDGEFWD_E_INVALID);
    }
    e.text = NULL;
    e.text_len = 1;
    expect("text NULL with a length", &e, EDGEFWD_E_INVALID);

    e = base_event();
    e.value_kind = EDGEFWD_VALUE_RAW;
    e.raw = (const uint8_t *)text_buf;
    e.raw_len = 0;
    expect("empty raw", &e, EDGEFWD_OK);
    e.raw = NULL;
    e.raw_len = 1;
    expect("raw NULL with a length", &e, EDGEFWD_E_INVALID);
}

static void test_tags(void)
{
    edgefwd_event_t e = base_event();
    size_t i;
    for (i = 0; i < 10; i++) {
        sprintf(tag_keys[i], "t%lu", (unsigned long)i);
        many_tags[i].key = tag_keys[i];
        many_tags[i].value = "v";
    }
    e.tags = many_tags;
    e.tags_len = 8;
    expect("8 tags", &e, EDGEFWD_OK);
    e.tags_len = 9;
    expect("9 tags", &e, EDGEFWD_E_INVALID);
    e.tags_len = 2;
    many_tags[1].key = "t0";
    expect("duplicate tag key", &e, EDGEFWD_E_INVALID);
    many_tags[1].key = "";
    expect("empty tag key", &e, EDGEFWD_E_INVALID);
    many_tags[1].key = repeat('k', 32);
    expect("32-byte tag key", &e, EDGEFWD_OK);
    many_tags[1].key = repeat('k', 33);
    expect("33-byte tag key", &e, EDGEFWD_E_INVALID);
    many_tags[1].key = tag_keys[1];
    many_tags[1].value = NULL;
    expect("NULL tag value (empty)", &e, EDGEFWD_OK);
    many_tags[1].value = repeat('v', 64);
    expect("64-byte tag value", &e, EDGEFWD_OK);
    many_tags[1].value = repeat('v', 65);
    expect("65-byte tag value", &e, EDGEFWD_E_INVALID);
    many_tags[1].value = "a b/c+#\xc3\xa9";
    expect("tag values are any UTF-8", &e, EDGEFWD_OK);
    many_tags[1].value = "\xed\xbf\xbf";
    expect("a surrogate in a tag value", &e, EDGEFWD_E_INVALID);
    many_tags[1].value = "v";
    e.tags = NULL;
    expect("tags NULL with a length", &e, EDGEFWD_E_INVALID);
}

static void test_keys(void)
{
    static const uint8_t key[65] = {1, 2, 3};
    edgefwd_event_t e = base_event();
    uint8_t out[256];
    size_t len;
    CHECK_RC(edgefwd_encode_event(&e, key, 15, out, sizeof out, &len), EDGEFWD_E_INVALID, "15-byte key");
    CHECK_RC(edgefwd_encode_event(&e, key, 65, out, sizeof out, &len), EDGEFWD_E_INVALID, "65-byte key");
    CHECK_RC(edgefwd_encode_event(&e, key, 0, out, sizeof out, &len), EDGEFWD_E_INVALID, "empty key");
    CHECK_RC(edgefwd_encode_event(&e, NULL, 16, out, sizeof out, &len), EDGEFWD_E_INVALID, "NULL key with a length");
#ifdef EDGEFWD_WITH_HMAC
    CHECK_RC(edgefwd_encode_event(&e, key, 16, out, sizeof out, &len), EDGEFWD_OK, "16-byte key");
    CHECK(len == edgefwd_event_frame_size(&e, true) && out[1] == 0x81, "tagged frame: type 0x81, size");
    {
        uint8_t mac[32];
        edgefwd_hmac_sha256(key, 16, out, len - 20, mac);
        CHECK_BYTES("tag = first 16 bytes of HMAC-SHA256(key, version | type | body)", out + len - 20, 16, mac, 16);
    }
    CHECK_RC(edgefwd_encode_event(&e, key, 64, out, sizeof out, &len), EDGEFWD_OK, "64-byte key");
#else
    CHECK_RC(edgefwd_encode_event(&e, key, 16, out, sizeof out, &len), EDGEFWD_E_UNSUPPORTED, "a key without EDGEFWD_WITH_HMAC");
#endif
}

static void test_hello_rules(void)
{
    edgefwd_hello_t h;
    uint8_t out[256];
    size_t len;
    h.device_id = "sensor-1";
    h.firmware_version = NULL;
    h.capabilities = 0;
    CHECK_RC(edgefwd_encode_hello(&h, NULL, 0, out, sizeof out, &len), EDGEFWD_OK, "hello with an id only");
    CHECK(len == 6 + 10 && out[1] == 0x04, "hello: type 4, body = the id field only");
    h.firmware_version = repeat('v', 64);
    CHECK_RC(edgefwd_encode_hello(&h, NULL, 0, out, sizeof out, &len), EDGEFWD_OK, "64-byte firmware version");
    h.firmware_version = repeat('v', 65);
    CHECK_RC(edgefwd_encode_hello(&h, NULL, 0, out, sizeof out, &len), EDGEFWD_E_INVALID, "65-byte firmware version");
    h.firmware_version = "1.0";
    h.device_id = "a/b";
    CHECK_RC(edgefwd_encode_hello(&h, NULL, 0, out, sizeof out, &len), EDGEFWD_E_INVALID, "hello with a bad id");
    CHECK_RC(edgefwd_encode_hello(NULL, NULL, 0, out, sizeof out, &len), EDGEFWD_E_INVALID, "NULL hello");
    CHECK(edgefwd_hello_frame_size(NULL, false) == 0, "NULL hello has no size");
}

static void test_arguments(void)
{
    edgefwd_event_t e = base_event();
    uint8_t out[64];
    size_t len = 5;
    CHECK_RC(edgefwd_encode_event(NULL, NULL, 0, out, sizeof out, &len), EDGEFWD_E_INVALID, "NULL event");
    CHECK_RC(edgefwd_encode_event(&e, NULL, 0, out, sizeof out, NULL), EDGEFWD_E_INVALID, "NULL out_len");
    CHECK_RC(edgefwd_encode_event(&e, NULL, 0, NULL, 10, &len), EDGEFWD_E_INVALID, "NULL out with a capacity");
    CHECK_RC(edgefwd_encode_event(&e, NULL, 0, NULL, 0, &len), EDGEFWD_E_BUFFER, "NULL out, capacity 0: a sizing call");
    CHECK(len == edgefwd_event_frame_size(&e, false), "E_BUFFER reports the size needed");
    CHECK_RC(edgefwd_write_event(&e, NULL, 0, NULL, NULL), EDGEFWD_E_INVALID, "NULL write callback");
}

static void test_strerror(void)
{
    int codes[] = {EDGEFWD_OK, EDGEFWD_E_INVALID, EDGEFWD_E_TOO_LARGE, EDGEFWD_E_BUFFER, EDGEFWD_E_WRITE,
                   EDGEFWD_E_UNSUPPORTED, EDGEFWD_E_COBS, EDGEFWD_E_CRC, EDGEFWD_E_FRAME};
    size_t i, j;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(strcmp(edgefwd_strerror(codes[i]), "EDGEFWD_E_?") != 0, "code %d has a name", codes[i]);
        for (j = 0; j < i; j++) CHECK(strcmp(edgefwd_strerror(codes[i]), edgefwd_strerror(codes[j])) != 0, "names differ");
    }
    CHECK(strcmp(edgefwd_strerror(-99), "EDGEFWD_E_?") == 0, "unknown code");
}

void test_rules(void)
{
    test_device_id_and_scalars();
    test_values();
    test_tags();
    test_keys();
    test_hello_rules();
    test_arguments();
    test_strerror();
}
