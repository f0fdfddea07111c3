/* Known answers: CRC32C (RFC 3720 B.4), SHA-256 (FIPS 180-2), HMAC-SHA256 (RFC 4231), binary32 ->
 * binary64, and protobuf bodies whose expected bytes came from `protoc --encode` (re-checked
 * against protoc at every `make test` by tools/protoc-check.mjs when protoc is installed). */
#include "harness.h"

static void test_crc(void)
{
    static const uint8_t digits[] = "123456789";
    uint8_t buf[32];
    uint32_t crc;
    size_t i;
    CHECK(edgefwd_crc32c(0, digits, 9) == 0xE3069283u, "crc32c(123456789) = %08lx",
          (unsigned long)edgefwd_crc32c(0, digits, 9));
    CHECK(edgefwd_crc32c(0, digits, 0) == 0u, "crc32c of nothing is 0");
    crc = edgefwd_crc32c(0, digits, 4);
    crc = edgefwd_crc32c(crc, digits + 4, 5);
    CHECK(crc == 0xE3069283u, "chained crc32c = %08lx", (unsigned long)crc);
    /* RFC 3720 appendix B.4 (iSCSI). */
    memset(buf, 0, sizeof buf);
    CHECK(edgefwd_crc32c(0, buf, 32) == 0x8A9136AAu, "32 zero bytes");
    memset(buf, 0xFF, sizeof buf);
    CHECK(edgefwd_crc32c(0, buf, 32) == 0x62A8AB43u, "32 0xFF bytes");
    for (i = 0; i < 32; i++) buf[i] = (uint8_t)i;
    CHECK(edgefwd_crc32c(0, buf, 32) == 0x46DD794Eu, "32 incrementing bytes");
    for (i = 0; i < 32; i++) buf[i] = (uint8_t)(31 - i);
    CHECK(edgefwd_crc32c(0, buf, 32) == 0x113FDB5Cu, "32 decrementing bytes");
}

#ifdef EDGEFWD_WITH_HMAC
static void check_digest(const char *what, const uint8_t *got, size_t n, const char *want_hex)
{
    uint8_t want[32];
    size_t len = hex_to_bytes(want_hex, want, sizeof want);
    CHECK_BYTES(what, got, n, want, len);
}

static void sha_of(const uint8_t *p, size_t n, uint8_t out[32])
{
    edgefwd_sha256_t s;
    edgefwd_sha256_init(&s);
    edgefwd_sha256_update(&s, p, n);
    edgefwd_sha256_final(&s, out);
}

static void test_sha256(void)
{
    static const struct {
        size_t n;
        const char *hex;
    } as[] = {
        /* SHA-256 of n 'a' bytes around the padding boundaries (55/56 and 63/64/65). */
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
    };
    static const char abc448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    uint8_t d[32], a[1000];
    edgefwd_sha256_t s;
    size_t i;
    sha_of((const uint8_t *)"abc", 3, d);
    check_digest("FIPS 180-2 B.1 abc", d, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha_of((const uint8_t *)"", 0, d);
    check_digest("empty", d, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_of((const uint8_t *)abc448, sizeof abc448 - 1, d);
    check_digest("FIPS 180-2 B.2", d, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    memset(a, 'a', sizeof a);
    edgefwd_sha256_init(&s); /* FIPS 180-2 B.3, fed in uneven pieces */
    for (i = 0; i < 1000; i++) {
        edgefwd_sha256_update(&s, a, 999);
        edgefwd_sha256_update(&s, a, 1);
    }
    edgefwd_sha256_final(&s, d);
    check_digest("FIPS 180-2 B.3 one million a", d, 32, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    for (i = 0; i < sizeof as / sizeof as[0]; i++) {
        sha_of(a, as[i].n, d);
        check_digest("n times a", d, 32, as[i].hex);
    }
}

static void test_hmac(void)
{
    /* RFC 4231 test cases 1-7 (case 5 is truncated to 128 bits, like the frame tag). */
    static const struct {
        const char *key_hex;
        const char *data;
        const char *data_hex;
        const char *mac_hex;
    } rfc[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "Hi There", NULL,
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"4a656665", "what do ya want for nothing?", NULL,
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL,
         "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {"0102030405060708090a0b0c0d0e0f10111213141516171819", NULL,
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "Test With Truncation", NULL,
         "a3b6167473100ee06e0c796c2955552b"},
        {NULL, "Test Using Larger Than Block-Size Key - Hash Key First", NULL,
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {NULL,
         "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
         NULL, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    size_t i;
    for (i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
        uint8_t key[131], data[200], mac[32], want[32];
        size_t key_len, data_len, want_len;
        char what[40];
        if (rfc[i].key_hex != NULL) {
            key_len = hex_to_bytes(rfc[i].key_hex, key, sizeof key);
        } else {
            memset(key, 0xaa, 131); /* cases 6 and 7: a 131-byte key, hashed first */
            key_len = 131;
        }
        if (rfc[i].data != NULL) {
            data_len = strlen(rfc[i].data);
            memcpy(data, rfc[i].data, data_len);
        } else {
            data_len = hex_to_bytes(rfc[i].data_hex, data, sizeof data);
        }
        want_len = hex_to_bytes(rfc[i].mac_hex, want, sizeof want);
        edgefwd_hmac_sha256(key, key_len, data, data_len, mac);
        sprintf(what, "RFC 4231 test case %lu", (unsigned long)(i + 1));
        CHECK_BYTES(what, mac, want_len, want, want_len);
    }
}
#endif

/* The AVR path (32-bit double): every binary32 class converts exactly, as the host's cast does. */
static void test_f32_to_f64(void)
{
    static const uint32_t bits[] = {
        0x00000000u, 0x80000000u, 0x3F800000u, 0xBF800000u, 0x41AC0000u /* 21.5 */,
        0x7F7FFFFFu /* max */, 0x00800000u /* min normal */, 0x00000001u /* min subnormal */,
        0x007FFFFFu /* max subnormal */, 0x80000003u, 0x00012345u, 0x7F800000u /* inf */,
        0xFF800000u /* -inf */, 0x7FC00000u /* quiet NaN */, 0x7FA00001u /* NaN with payload */,
        0x3DCCCCCDu /* 0.1f */, 0xC2F6E979u,
    };
    size_t i;
    uint32_t x = 0x12345679u;
    for (i = 0; i < sizeof bits / sizeof bits[0] + 100000u; i++) {
        uint32_t f;
        float fl;
        double d;
        uint64_t want;
        if (i < sizeof bits / sizeof bits[0]) {
            f = bits[i];
        } else {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5; /* xorshift32 over every class */
            f = x;
        }
        memcpy(&fl, &f, sizeof fl);
        if (fl != fl) {
            /* NaN: the payload is kept, shifted into the top of the binary64 mantissa. */
            want = ((uint64_t)(f >> 31) << 63) | 0x7FF0000000000000ull | ((uint64_t)(f & 0x7FFFFFu) << 29);
        } else {
            d = (double)fl;
            memcpy(&want, &d, sizeof want);
        }
        if (edgefwd_test_f32_to_f64(f) != want) {
            CHECK(0, "f32 %08lx -> %016llx, want %016llx", (unsigned long)f,
                  (unsigned long long)edgefwd_test_f32_to_f64(f), (unsigned long long)want);
            break;
        }
    }
    harness_checks++;
}

/* ---- Protobuf bodies -------------------------------------------------------------------------- */

static const edgefwd_tag_t site_a[] = {{"site", "a"}};
static const edgefwd_number_t three[] = {{"z", 21.5}, {"rh", 40}, {"a", -0.125}};
static const uint8_t raw3[] = {0x00, 0x01, 0xFF};
static const edgefwd_tag_t empty_value[] = {{"zz", ""}, {"k", "v"}};

typedef struct {
    const char *name;
    const char *text; /* protoc text format */
    const char *hex;  /* the body protoc --encode gives for it */
    edgefwd_event_t event;
    int is_hello;
    edgefwd_hello_t hello;
} pb_case_t;

static const pb_case_t pb_cases[] = {
    {"device id only", "device_id: \"d\"", "0a0164", {"d", 0, false, 0, false, 0, 0, NULL, EDGEFWD_VALUE_NONE, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0}, 0, {NULL, NULL, 0}},
    {"every scalar, a number, a tag",
     "device_id: \"sensor-1\" seq: 1 device_time_ms: 1700000000000 uptime_ms: 5 priority: PRIORITY_NORMAL stream: \"telemetry\" number: 21.5 tags { key: \"site\" value: \"a\" }",
     "0a0873656e736f722d3110011880d095ffbc3120052801320974656c656d657472793900000000008035405a090a0473697465120161",
     {"sensor-1", 1, true, 1700000000000ull, true, 5, 1, "telemetry", EDGEFWD_VALUE_NUMBER, 21.5, NULL, 0, NULL, 0, NULL, 0, site_a, 1}, 0, {NULL, NULL, 0}},
    {"optional times present at 0, number 0, largest seq",
     "device_id: \"d\" seq: 9007199254740991 device_time_ms: 0 uptime_ms: 0 priority: PRIORITY_CRITICAL number: 0",
     "0a016410ffffffffffffff0f180020002803390000000000000000",
     {"d", 9007199254740991ull, true, 0, true, 0, 3, NULL, EDGEFWD_VALUE_NUMBER, 0.0, NULL, 0, NULL, 0, NULL, 0, NULL, 0}, 0, {NULL, NULL, 0}},
    {"numbers in caller order",
     "device_id: \"d\" numbers { values { key: \"z\" value: 21.5 } values { key: \"rh\" value: 40 } values { key: \"a\" value: -0.125 } }",
     "0a0164422b0a0c0a017a1100000000008035400a0d0a0272681100000000000044400a0c0a016111000000000000c0bf",
     {"d", 0, false, 0, false, 0, 0, "", EDGEFWD_VALUE_NUMBERS, 0, three, 3, NULL, 0, NULL, 0, NULL, 0}, 0, {NULL, NULL, 0}},
    {"utf-8 text", "device_id: \"d\" text: \"gr\\303\\274\\303\\237e\"", "0a01644a076772c3bcc39f65",
     {"d", 0, false, 0, false, 0, 0, NULL, EDGEFWD_VALUE_TEXT, 0, NULL, 0, "gr\303\274\303\237e", 7, NULL, 0, NULL, 0}, 0, {NULL, NULL, 0}},
    {"empty text is still written", "device_id: \"d\" text: \"\"", "0a01644a00",
     {"d", 0, false, 0, false, 0, 0, NULL, EDGEFWD_VALUE_TEXT, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0}, 0, {NULL, NULL, 0}},
    {"raw with zero bytes", "device_id: \"d\" raw: \"\\000\\001\\377\"", "0a016452030001ff",
     {"d", 0, false, 0, false, 0, 0, NULL, EDGEFWD_VALUE_RAW, 0, NULL, 0, NULL, 0, raw3, 3, NULL, 0}, 0, {NULL, NULL, 0}},
    {"empty raw is still written", "device_id: \"d\" raw: \"\"", "0a01645200",
     {"d", 0, false, 0, false, 0, 0, NULL, EDGEFWD_VALUE_RAW, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0}, 0, {NULL, NULL, 0}},
    {"empty numbers map is still written", "device_id: \"d\" numbers { }", "0a01644200",
     {"d", 0, false, 0, false, 0, 0, NULL, EDGEFWD_VALUE_NUMBERS, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0}, 0, {NULL, NULL, 0}},
    {"tags in caller order, empty value written",
     "device_id: \"d\" tags { key: \"zz\" value: \"\" } tags { key: \"k\" value: \"v\" }",
     "0a01645a060a027a7a12005a060a016b120176",
     {"d", 0, false, 0, false, 0, 0, NULL, EDGEFWD_VALUE_NONE, 0, NULL, 0, NULL, 0, NULL, 0, empty_value, 2}, 0, {NULL, NULL, 0}},
    {"largest device time, negative zero",
     "device_id: \"d\" device_time_ms: 9007199254740991 number: -0",
     "0a016418ffffffffffffff0f390000000000000080",
     {"d", 0, true, 9007199254740991ull, false, 0, 0, NULL, EDGEFWD_VALUE_NUMBER, -0.0, NULL, 0, NULL, 0, NULL, 0, NULL, 0}, 0, {NULL, NULL, 0}},
    {"hello", "device_id: \"sensor-1\" firmware_version: \"1.2.3\" capabilities: 1",
     "0a0873656e736f722d311205312e322e331801",
     {NULL, 0, false, 0, false, 0, 0, NULL, 0, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0}, 1, {"sensor-1", "1.2.3", EDGEFWD_CAP_ACKS}},
};

#define PB_CASES (sizeof pb_cases / sizeof pb_cases[0])

static int encode_case(const pb_case_t *c, uint8_t *out, size_t cap, size_t *len)
{
    if (c->is_hello) return edgefwd_encode_hello(&c->hello, NULL, 0, out, cap, len);
    return edgefwd_encode_event(&c->event, NULL, 0, out, cap, len);
}

static void test_protobuf(void)
{
    size_t i;
    for (i = 0; i < PB_CASES; i++) {
        const pb_case_t *c = &pb_cases[i];
        uint8_t frame[256], want[256];
        size_t len = 0, want_len = hex_to_bytes(c->hex, want, sizeof want);
        int rc = encode_case(c, frame, sizeof frame, &len);
        CHECK_RC(rc, EDGEFWD_OK, c->name);
        if (rc != 0) continue;
        CHECK(frame[0] == 0x01 && frame[1] == (c->is_hello ? 0x04 : 0x01), "%s: envelope", c->name);
        CHECK_BYTES(c->name, frame + 2, len - 6, want, want_len);
        CHECK(edgefwd_crc32c(0, frame, len - 4) ==
                  ((uint32_t)frame[len - 4] | (uint32_t)frame[len - 3] << 8 | (uint32_t)frame[len - 2] << 16 | (uint32_t)frame[len - 1] << 24),
              "%s: CRC32C little-endian at the end", c->name);
        CHECK(len == (c->is_hello ? edgefwd_hello_frame_size(&c->hello, false) : edgefwd_event_frame_size(&c->event, false)),
              "%s: sizing pass agrees", c->name);
    }
}

void dump_protobuf_cases(FILE *f)
{
    size_t i;
    for (i = 0; i < PB_CASES; i++) {
        uint8_t frame[256];
        size_t len = 0;
        if (encode_case(&pb_cases[i], frame, sizeof frame, &len) != 0) {
            fprintf(stderr, "%s: does not encode\n", pb_cases[i].name);
            exit(1);
        }
        fprintf(f, "%s\t%s\t", pb_cases[i].name, pb_cases[i].is_hello ? "DeviceHello" : "DeviceFrame");
        print_hex(f, frame + 2, len - 6);
        fprintf(f, "\t%s\n", pb_cases[i].text);
    }
}

void test_known_answers(void)
{
    test_crc();
#ifdef EDGEFWD_WITH_HMAC
    test_sha256();
    test_hmac();
#endif
    test_f32_to_f64();
    test_protobuf();
}
