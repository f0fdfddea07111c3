/*
 * edgefwd.c - device-side encoder for the edgefwd device protocol, version 1.
 * See edgefwd.h for the API and firmware-bridge/PROTOCOL.md for the wire format.
 *
 * Design: every frame is produced by one emitter (ef_emit_frame) that pushes bytes into an
 * ef_out sink. A sink either counts (the sizing pass), copies into a caller buffer, or COBS-encodes
 * into a caller write callback through one 256-byte block. CRC32C and the HMAC run over the bytes as
 * they pass, so a streamed frame never exists in memory as a whole. Nested protobuf lengths (map
 * entries, NumberMap) are computed arithmetically before each nested message is written.
 */
#include "edgefwd.h"

#include <string.h>

/* The protobuf field keys of DeviceFrame / NumberMap / DeviceHello, (field << 3) | wire type. */
#define PB_VARINT 0u
#define PB_FIXED64 1u
#define PB_LEN 2u
#define PB_KEY(field, wt) ((uint8_t)(((field) << 3) | (wt)))

/* ---- CRC32C: reflected 0x82F63B78, one 16-entry table (64 bytes) and two lookups per byte ---- */

static const uint32_t ef_crc_nibble[16] = {
    0x00000000u, 0x105EC76Fu, 0x20BD8EDEu, 0x30E349B1u, 0x417B1DBCu, 0x5125DAD3u,
    0x61C69362u, 0x7198540Du, 0x82F63B78u, 0x92A8FC17u, 0xA24BB5A6u, 0xB21572C9u,
    0xC38D26C4u, 0xD3D3E1ABu, 0xE330A81Au, 0xF36E6F75u};

/* Raw register update: no pre/post inversion. */
static uint32_t ef_crc_update(uint32_t crc, const uint8_t *p, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ ef_crc_nibble[crc & 15u];
        crc = (crc >> 4) ^ ef_crc_nibble[crc & 15u];
    }
    return crc;
}

uint32_t edgefwd_crc32c(uint32_t crc, const uint8_t *p, size_t len)
{
    if (p == NULL) return crc;
    return ~ef_crc_update(~crc, p, len);
}

/* ---- SHA-256 and HMAC-SHA256 ------------------------------------------------------------------ */
#ifdef EDGEFWD_WITH_HMAC

static const uint32_t ef_sha_k[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u,
    0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu,
    0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu,
    0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u,
    0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u,
    0xc67178f2u};

#define EF_ROR(x, n) (((x) >> (n)) | ((x) << (32u - (n))))

/* One 64-byte block; the message schedule is kept as a rolling 16-word window (64 bytes of stack). */
static void ef_sha_block(edgefwd_sha256_t *s, const uint8_t *p)
{
    uint32_t w[16], a, b, c, d, e, f, g, h, t1, t2;
    unsigned i;
    for (i = 0; i < 16; i++) {
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) |
               ((uint32_t)p[4 * i + 2] << 8) | (uint32_t)p[4 * i + 3];
    }
    a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3];
    e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
    for (i = 0; i < 64; i++) {
        if (i >= 16) {
            uint32_t w15 = w[(i - 15) & 15u], w2 = w[(i - 2) & 15u];
            w[i & 15u] += (EF_ROR(w2, 17u) ^ EF_ROR(w2, 19u) ^ (w2 >> 10)) + w[(i - 7) & 15u] +
                          (EF_ROR(w15, 7u) ^ EF_ROR(w15, 18u) ^ (w15 >> 3));
        }
        t1 = h + (EF_ROR(e, 6u) ^ EF_ROR(e, 11u) ^ EF_ROR(e, 25u)) + ((e & f) ^ (~e & g)) +
             ef_sha_k[i] + w[i & 15u];
        t2 = (EF_ROR(a, 2u) ^ EF_ROR(a, 13u) ^ EF_ROR(a, 22u)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
    s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

void edgefwd_sha256_init(edgefwd_sha256_t *s)
{
    static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    memcpy(s->h, iv, sizeof iv);
    s->total = 0;
    s->fill = 0;
}

void edgefwd_sha256_update(edgefwd_sha256_t *s, const uint8_t *p, size_t len)
{
    s->total += len;
    while (len > 0) {
        size_t take = 64u - s->fill;
        if (take > len) take = len;
        memcpy(s->block + s->fill, p, take);
        s->fill += take;
        p += take;
        len -= take;
        if (s->fill == 64u) {
            ef_sha_block(s, s->block);
            s->fill = 0;
        }
    }
}

void edgefwd_sha256_final(edgefwd_sha256_t *s, uint8_t out[32])
{
    uint64_t bits = s->total * 8u;
    unsigned i;
    s->block[s->fill++] = 0x80u;
    if (s->fill > 56u) {
        memset(s->block + s->fill, 0, 64u - s->fill);
        ef_sha_block(s, s->block);
        s->fill = 0;
    }
    memset(s->block + s->fill, 0, 56u - s->fill);
    for (i = 0; i < 8; i++) s->block[63u - i] = (uint8_t)(bits >> (8u * i));
    ef_sha_block(s, s->block);
    for (i = 0; i < 32; i++) out[i] = (uint8_t)(s->h[i / 4u] >> (24u - 8u * (i % 4u)));
}

static void ef_hmac_pad(edgefwd_sha256_t *s, const uint8_t k0[64], uint8_t pad)
{
    uint8_t block[64];
    unsigned i;
    for (i = 0; i < 64; i++) block[i] = (uint8_t)(k0[i] ^ pad);
    edgefwd_sha256_init(s);
    edgefwd_sha256_update(s, block, sizeof block);
}

void edgefwd_hmac_init(edgefwd_hmac_t *m, const uint8_t *key, size_t key_len)
{
    memset(m->k0, 0, sizeof m->k0);
    if (key_len > 64u) {
        edgefwd_sha256_init(&m->inner);
        edgefwd_sha256_update(&m->inner, key, key_len);
        edgefwd_sha256_final(&m->inner, m->k0);
    } else if (key_len > 0) {
        memcpy(m->k0, key, key_len);
    }
    ef_hmac_pad(&m->inner, m->k0, 0x36u);
}

void edgefwd_hmac_update(edgefwd_hmac_t *m, const uint8_t *p, size_t len)
{
    edgefwd_sha256_update(&m->inner, p, len);
}

void edgefwd_hmac_final(edgefwd_hmac_t *m, uint8_t out[32])
{
    uint8_t ih[32];
    edgefwd_sha256_final(&m->inner, ih);
    ef_hmac_pad(&m->inner, m->k0, 0x5cu);
    edgefwd_sha256_update(&m->inner, ih, sizeof ih);
    edgefwd_sha256_final(&m->inner, out);
}

void edgefwd_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                         uint8_t out[32])
{
    edgefwd_hmac_t m;
    edgefwd_hmac_init(&m, key, key_len);
    edgefwd_hmac_update(&m, msg, len);
    edgefwd_hmac_final(&m, out);
}

#endif /* EDGEFWD_WITH_HMAC */

/* ---- Doubles as their IEEE-754 bits ---------------------------------------------------------- */

#if (defined(__SIZEOF_DOUBLE__) && __SIZEOF_DOUBLE__ == 4) || defined(EDGEFWD_TEST_INTERNALS)
/* binary32 bits -> binary64 bits (exact), for targets where double is 32-bit (AVR Arduinos). */
static uint64_t ef_f32_to_f64(uint32_t f)
{
    uint64_t sign = (uint64_t)(f >> 31) << 63;
    uint32_t exp = (f >> 23) & 0xFFu;
    uint64_t man = f & 0x7FFFFFu;
    int32_t e;
    if (exp == 0xFFu) return sign | 0x7FF0000000000000ull | (man << 29); /* inf, NaN */
    if (exp == 0u) {
        if (man == 0u) return sign; /* +-0 */
        e = -126;                   /* subnormal: normalise */
        while ((man & 0x800000u) == 0u) {
            man <<= 1;
            e--;
        }
        man &= 0x7FFFFFu;
    } else {
        e = (int32_t)exp - 127;
    }
    return sign | ((uint64_t)(uint32_t)(e + 1023) << 52) | (man << 29);
}
#endif

#if defined(__SIZEOF_DOUBLE__) && __SIZEOF_DOUBLE__ == 4
static uint64_t ef_double_bits(double d)
{
    uint32_t f;
    memcpy(&f, &d, sizeof f);
    return ef_f32_to_f64(f);
}
#else
/* IEEE-754 binary64 with the same byte order as uint64_t is assumed (true on every current MCU). */
typedef char ef_double_must_be_8_bytes[(sizeof(double) == 8u) ? 1 : -1];
static uint64_t ef_double_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}
#endif

/* ---- Small helpers --------------------------------------------------------------------------- */

static size_t ef_add(size_t a, size_t b) { return (a > SIZE_MAX - b) ? SIZE_MAX : a + b; }

/* strlen that stops one past the largest frame: a longer string makes the frame oversize anyway,
 * and a missing terminator cannot send us through all of memory. */
static size_t ef_strlen(const char *s)
{
    size_t n = 0;
    if (s == NULL) return 0;
    while (n <= EDGEFWD_MAX_FRAME_SIZE && s[n] != '\0') n++;
    return n;
}

static size_t ef_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80u) {
        v >>= 7;
        n++;
    }
    return n;
}

/* A length-delimited field with a one-byte key (field <= 15): key, length, payload. */
static size_t ef_len_field_size(size_t len) { return ef_add(1u + ef_varint_size(len), len); }

/* min to max bytes of printable ASCII 0x21-0x7E; device ids also refuse / + # (they become an
 * MQTT topic segment). */
static bool ef_ascii_ok(const char *s, size_t min, size_t max, bool is_device_id)
{
    size_t n = ef_strlen(s), i;
    if (n < min || n > max) return false;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21u || c > 0x7Eu) return false;
        if (is_device_id && (c == '/' || c == '+' || c == '#')) return false;
    }
    return true;
}

/* Well-formed UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF). */
static bool ef_utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t need, k;
        uint32_t cp, min;
        if (c < 0x80u) {
            i++;
            continue;
        }
        if ((c & 0xE0u) == 0xC0u) {
            need = 1; cp = c & 0x1Fu; min = 0x80u;
        } else if ((c & 0xF0u) == 0xE0u) {
            need = 2; cp = c & 0x0Fu; min = 0x800u;
        } else if ((c & 0xF8u) == 0xF0u) {
            need = 3; cp = c & 0x07u; min = 0x10000u;
        } else {
            return false;
        }
        if (n - i <= need) return false;
        for (k = 1; k <= need; k++) {
            uint8_t b = s[i + k];
            if ((b & 0xC0u) != 0x80u) return false;
            cp = (cp << 6) | (b & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) return false;
        i += need + 1u;
    }
    return true;
}

static bool ef_text_ok(const char *s, size_t min, size_t max)
{
    size_t n = ef_strlen(s);
    return n >= min && n <= max && ef_utf8_ok((const uint8_t *)s, n);
}

/* Equal map keys (NULL is the empty key). */
static bool ef_same(const char *a, const char *b)
{
    size_t n = ef_strlen(a);
    if (n != ef_strlen(b)) return false;
    return n == 0 || memcmp(a, b, n) == 0;
}

/* ---- The output sink --------------------------------------------------------------------------- */

/* COBS state for streamed frames: blk[0] is the code byte, blk[1..254] the block's data, and one
 * more byte lets the final block and the 0x00 delimiter go out in one write. */
typedef struct {
    uint8_t blk[256];
    size_t n; /* data bytes in the current block */
} ef_cobs_t;

typedef struct {
    uint8_t *buf; /* memory destination, or */
    size_t cap;
    ef_cobs_t *cobs; /* stream destination, or neither: count only (the sizing pass) */
    edgefwd_write_fn write;
    void *ctx;
    size_t len; /* bytes accepted (saturating when counting) */
    int err;
    uint32_t crc; /* CRC32C register over everything accepted */
#ifdef EDGEFWD_WITH_HMAC
    edgefwd_hmac_t *mac; /* non-NULL while the tagged part passes */
#endif
} ef_out;

static void ef_cobs_emit(ef_out *o, size_t n)
{
    if (o->err == 0 && o->write(o->ctx, o->cobs->blk, n) != 0) o->err = EDGEFWD_E_WRITE;
}

static void ef_cobs_byte(ef_out *o, uint8_t b)
{
    ef_cobs_t *c = o->cobs;
    /* A full block (code 0xFF, no implied zero) goes out only once another byte follows, so a
     * frame that ends exactly on a full block gets no extra empty block, as in Cheshire & Baker's
     * reference encoder and edgefwd_write_stream_frame. */
    if (c->n == 254u) {
        c->blk[0] = 0xFFu;
        ef_cobs_emit(o, 255u);
        c->n = 0;
    }
    if (b == 0u) {
        c->blk[0] = (uint8_t)(c->n + 1u);
        ef_cobs_emit(o, c->n + 1u);
        c->n = 0;
    } else {
        c->blk[++c->n] = b;
    }
}

static void ef_cobs_finish(ef_out *o)
{
    ef_cobs_t *c = o->cobs;
    c->blk[0] = (uint8_t)(c->n + 1u); /* 254 data bytes -> 0xFF */
    c->blk[c->n + 1u] = 0x00u;        /* the delimiter */
    ef_cobs_emit(o, c->n + 2u);
}

static void ef_put(ef_out *o, const uint8_t *p, size_t n)
{
    size_t i;
    if (o->err != 0 || n == 0) return;
    if (o->buf == NULL && o->cobs == NULL) {
        o->len = ef_add(o->len, n);
        return;
    }
    o->crc = ef_crc_update(o->crc, p, n);
#ifdef EDGEFWD_WITH_HMAC
    if (o->mac != NULL) edgefwd_hmac_update(o->mac, p, n);
#endif
    if (o->buf != NULL) {
        if (n > o->cap - o->len) {
            o->err = EDGEFWD_E_BUFFER;
            return;
        }
        memcpy(o->buf + o->len, p, n);
    } else {
        for (i = 0; i < n && o->err == 0; i++) ef_cobs_byte(o, p[i]);
    }
    o->len += n;
}

static void ef_byte(ef_out *o, uint8_t b) { ef_put(o, &b, 1); }

static void ef_varint(ef_out *o, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80u) {
        tmp[n++] = (uint8_t)(v | 0x80u);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    ef_put(o, tmp, n);
}

static void ef_le(ef_out *o, uint64_t v, size_t n)
{
    uint8_t tmp[8];
    size_t i;
    for (i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8u * i));
    ef_put(o, tmp, n);
}

static void ef_len_field(ef_out *o, unsigned field, const void *p, size_t n)
{
    ef_byte(o, PB_KEY(field, PB_LEN));
    ef_varint(o, n);
    ef_put(o, (const uint8_t *)p, n);
}

static void ef_string_field(ef_out *o, unsigned field, const char *s)
{
    size_t n = ef_strlen(s);
    if (n > 0) ef_len_field(o, field, s, n); /* proto3: empty strings are omitted */
}

/* ---- Bodies ----------------------------------------------------------------------------------- */

typedef struct {
    const char *device_id;
    uint64_t seq;
} ef_ack_t;

static size_t ef_number_entry_size(const edgefwd_number_t *n)
{
    return ef_add(ef_len_field_size(ef_strlen(n->key)), 9u); /* key (1), value (7 fixed64) */
}

static size_t ef_tag_entry_size(const edgefwd_tag_t *t)
{
    return ef_add(ef_len_field_size(ef_strlen(t->key)), ef_len_field_size(ef_strlen(t->value)));
}

static size_t ef_number_map_size(const edgefwd_event_t *e)
{
    size_t i, n = 0;
    for (i = 0; i < e->numbers_len && n <= EDGEFWD_MAX_FRAME_SIZE; i++) {
        n = ef_add(n, ef_len_field_size(ef_number_entry_size(&e->numbers[i])));
    }
    return n;
}

static void ef_event_body(ef_out *o, const edgefwd_event_t *e)
{
    size_t i;
    ef_string_field(o, 1, e->device_id);
    if (e->seq != 0u) {
        ef_byte(o, PB_KEY(2u, PB_VARINT));
        ef_varint(o, e->seq);
    }
    if (e->has_device_time) {
        ef_byte(o, PB_KEY(3u, PB_VARINT));
        ef_varint(o, e->device_time_ms);
    }
    if (e->has_uptime) {
        ef_byte(o, PB_KEY(4u, PB_VARINT));
        ef_varint(o, e->uptime_ms);
    }
    if (e->priority != 0u) {
        ef_byte(o, PB_KEY(5u, PB_VARINT));
        ef_varint(o, e->priority);
    }
    ef_string_field(o, 6, e->stream);
    switch (e->value_kind) {
    case EDGEFWD_VALUE_NUMBER:
        ef_byte(o, PB_KEY(7u, PB_FIXED64));
        ef_le(o, ef_double_bits(e->number), 8);
        break;
    case EDGEFWD_VALUE_NUMBERS:
        ef_byte(o, PB_KEY(8u, PB_LEN));
        ef_varint(o, ef_number_map_size(e));
        for (i = 0; i < e->numbers_len && o->len <= EDGEFWD_MAX_FRAME_SIZE; i++) {
            const edgefwd_number_t *n = &e->numbers[i];
            ef_byte(o, PB_KEY(1u, PB_LEN)); /* NumberMap.values entry */
            ef_varint(o, ef_number_entry_size(n));
            ef_len_field(o, 1, n->key == NULL ? "" : n->key, ef_strlen(n->key));
            ef_byte(o, PB_KEY(2u, PB_FIXED64));
            ef_le(o, ef_double_bits(n->value), 8);
        }
        break;
    case EDGEFWD_VALUE_TEXT:
        ef_len_field(o, 9, e->text, e->text_len); /* a oneof member: written even when empty */
        break;
    case EDGEFWD_VALUE_RAW:
        ef_len_field(o, 10, e->raw, e->raw_len);
        break;
    default:
        break;
    }
    for (i = 0; i < e->tags_len && o->len <= EDGEFWD_MAX_FRAME_SIZE; i++) {
        const edgefwd_tag_t *t = &e->tags[i];
        ef_byte(o, PB_KEY(11u, PB_LEN));
        ef_varint(o, ef_tag_entry_size(t));
        ef_len_field(o, 1, t->key == NULL ? "" : t->key, ef_strlen(t->key));
        ef_len_field(o, 2, t->value == NULL ? "" : t->value, ef_strlen(t->value));
    }
}

static bool ef_event_shape_ok(const edgefwd_event_t *e)
{
    if (e == NULL) return false;
    if (e->tags == NULL && e->tags_len != 0u) return false;
    switch (e->value_kind) {
    case EDGEFWD_VALUE_NONE:
    case EDGEFWD_VALUE_NUMBER:
        return true;
    case EDGEFWD_VALUE_NUMBERS:
        return e->numbers != NULL || e->numbers_len == 0u;
    case EDGEFWD_VALUE_TEXT:
        return e->text != NULL || e->text_len == 0u;
    case EDGEFWD_VALUE_RAW:
        return e->raw != NULL || e->raw_len == 0u;
    default:
        return false;
    }
}

int edgefwd_event_check(const edgefwd_event_t *e)
{
    size_t i, j;
    if (!ef_event_shape_ok(e)) return EDGEFWD_E_INVALID;
    if (!ef_ascii_ok(e->device_id, 1u, EDGEFWD_DEVICE_ID_MAX, true)) return EDGEFWD_E_INVALID;
    /* The gateway keeps integers exactly up to 2^53-1 and refuses larger times as well as seqs. */
    if (e->seq > EDGEFWD_SEQ_MAX || (e->has_device_time && e->device_time_ms > EDGEFWD_SEQ_MAX) ||
        (e->has_uptime && e->uptime_ms > EDGEFWD_SEQ_MAX) || e->priority > EDGEFWD_PRIORITY_CRITICAL) {
        return EDGEFWD_E_INVALID;
    }
    if (!ef_ascii_ok(e->stream, 0u, EDGEFWD_STREAM_MAX, false)) return EDGEFWD_E_INVALID;
    switch (e->value_kind) {
    case EDGEFWD_VALUE_NUMBERS:
        if (e->numbers_len > EDGEFWD_NUMBERS_MAX) return EDGEFWD_E_INVALID;
        for (i = 0; i < e->numbers_len; i++) {
            /* Section 3 sets no length for names (the frame size bounds them): UTF-8 only. */
            if (!ef_text_ok(e->numbers[i].key, 0u, EDGEFWD_MAX_FRAME_SIZE)) return EDGEFWD_E_INVALID;
            for (j = 0; j < i; j++) {
                if (ef_same(e->numbers[i].key, e->numbers[j].key)) return EDGEFWD_E_INVALID;
            }
        }
        break;
    case EDGEFWD_VALUE_TEXT:
        if (e->text_len > EDGEFWD_TEXT_MAX || !ef_utf8_ok((const uint8_t *)e->text, e->text_len)) {
            return EDGEFWD_E_INVALID;
        }
        break;
    case EDGEFWD_VALUE_RAW:
        if (e->raw_len > EDGEFWD_RAW_MAX) return EDGEFWD_E_INVALID;
        break;
    default:
        break;
    }
    if (e->tags_len > EDGEFWD_TAGS_MAX) return EDGEFWD_E_INVALID;
    for (i = 0; i < e->tags_len; i++) {
        if (!ef_text_ok(e->tags[i].key, 1u, EDGEFWD_TAG_KEY_MAX) ||
            !ef_text_ok(e->tags[i].value, 0u, EDGEFWD_TAG_VALUE_MAX)) {
            return EDGEFWD_E_INVALID;
        }
        for (j = 0; j < i; j++) {
            if (ef_same(e->tags[i].key, e->tags[j].key)) return EDGEFWD_E_INVALID;
        }
    }
    return EDGEFWD_OK;
}

static void ef_hello_body(ef_out *o, const edgefwd_hello_t *h)
{
    ef_string_field(o, 1, h->device_id);
    ef_string_field(o, 2, h->firmware_version);
    if (h->capabilities != 0u) {
        ef_byte(o, PB_KEY(3u, PB_VARINT));
        ef_varint(o, h->capabilities);
    }
}

static int ef_hello_check(const edgefwd_hello_t *h)
{
    if (!ef_ascii_ok(h->device_id, 1u, EDGEFWD_DEVICE_ID_MAX, true)) return EDGEFWD_E_INVALID;
    if (!ef_text_ok(h->firmware_version, 0u, EDGEFWD_FIRMWARE_VERSION_MAX)) return EDGEFWD_E_INVALID;
    return EDGEFWD_OK;
}

static void ef_ack_body(ef_out *o, const ef_ack_t *a)
{
    size_t n = ef_strlen(a->device_id);
    ef_byte(o, (uint8_t)n);
    ef_put(o, (const uint8_t *)a->device_id, n);
    ef_le(o, a->seq, 8);
}

/* ---- Frames --------------------------------------------------------------------------------- */

static void ef_body(ef_out *o, uint8_t type, const void *obj)
{
    if (type == EDGEFWD_TYPE_EVENT) ef_event_body(o, (const edgefwd_event_t *)obj);
    else if (type == EDGEFWD_TYPE_HELLO) ef_hello_body(o, (const edgefwd_hello_t *)obj);
    else ef_ack_body(o, (const ef_ack_t *)obj);
}

/* The raw frame length, or 0 if obj cannot be encoded at all. */
static size_t ef_frame_size(uint8_t type, const void *obj, bool with_tag)
{
    ef_out count;
    if (obj == NULL) return 0;
    if (type == EDGEFWD_TYPE_EVENT) {
        const edgefwd_event_t *e = (const edgefwd_event_t *)obj;
        if (!ef_event_shape_ok(e)) return 0;
        /* Entries take at least 6 (tags) or 12 (numbers) bytes: a count past these is oversize,
         * and the arrays are never walked past what could fit. */
        if (e->tags_len > EDGEFWD_MAX_FRAME_SIZE / 6u) return SIZE_MAX;
        if (e->value_kind == EDGEFWD_VALUE_NUMBERS && e->numbers_len > EDGEFWD_MAX_FRAME_SIZE / 12u) {
            return SIZE_MAX;
        }
    }
    memset(&count, 0, sizeof count);
    ef_body(&count, type, obj);
    return ef_add(count.len, 2u + 4u + (with_tag ? EDGEFWD_TAG_LEN : 0u));
}

/* Every check, in the gateway's order, before a byte is written. */
static int ef_prepare(uint8_t type, const void *obj, const uint8_t *key, size_t key_len, size_t *size)
{
    int rc;
    *size = ef_frame_size(type, obj, key != NULL);
    if (*size == 0u) return EDGEFWD_E_INVALID;
    if (*size > EDGEFWD_MAX_FRAME_SIZE) return EDGEFWD_E_TOO_LARGE;
    if (type == EDGEFWD_TYPE_EVENT) rc = edgefwd_event_check((const edgefwd_event_t *)obj);
    else if (type == EDGEFWD_TYPE_HELLO) rc = ef_hello_check((const edgefwd_hello_t *)obj);
    else rc = ef_ascii_ok(((const ef_ack_t *)obj)->device_id, 1u, EDGEFWD_DEVICE_ID_MAX, true) ? 0 : EDGEFWD_E_INVALID;
    if (rc != 0) return rc;
    if (key == NULL ? key_len != 0u : (key_len < EDGEFWD_KEY_MIN || key_len > EDGEFWD_KEY_MAX)) {
        return EDGEFWD_E_INVALID;
    }
#ifndef EDGEFWD_WITH_HMAC
    if (key != NULL) return EDGEFWD_E_UNSUPPORTED;
#endif
    return EDGEFWD_OK;
}

/* version, type, body, [tag], CRC32C LE: the CRC (and the HMAC) run over the bytes as they pass. */
static int ef_emit_frame(ef_out *o, uint8_t type, const void *obj, const uint8_t *key, size_t key_len)
{
    uint8_t head[2];
#ifdef EDGEFWD_WITH_HMAC
    edgefwd_hmac_t mac;
    uint8_t tag[32];
    if (key != NULL) {
        edgefwd_hmac_init(&mac, key, key_len);
        o->mac = &mac;
    }
#else
    (void)key_len;
#endif
    head[0] = EDGEFWD_PROTOCOL_VERSION;
    head[1] = (uint8_t)(type | (key != NULL ? EDGEFWD_TYPE_TAG_FLAG : 0u));
    o->crc = 0xFFFFFFFFu;
    ef_put(o, head, sizeof head);
    ef_body(o, type, obj);
#ifdef EDGEFWD_WITH_HMAC
    if (key != NULL) {
        o->mac = NULL;
        edgefwd_hmac_final(&mac, tag);
        ef_put(o, tag, EDGEFWD_TAG_LEN);
    }
#endif
    ef_le(o, ~o->crc, 4);
    return o->err;
}

static int ef_encode_buf(uint8_t type, const void *obj, const uint8_t *key, size_t key_len,
                         uint8_t *out, size_t out_cap, size_t *out_len)
{
    size_t size;
    int rc;
    ef_out o;
    if (out_len == NULL || (out == NULL && out_cap != 0u)) return EDGEFWD_E_INVALID;
    *out_len = 0;
    rc = ef_prepare(type, obj, key, key_len, &size);
    if (rc != 0) return rc;
    if (size > out_cap) {
        *out_len = size;
        return EDGEFWD_E_BUFFER;
    }
    memset(&o, 0, sizeof o);
    o.buf = out;
    o.cap = out_cap;
    rc = ef_emit_frame(&o, type, obj, key, key_len);
    if (rc == 0) *out_len = o.len;
    return rc;
}

static int ef_write_stream(uint8_t type, const void *obj, const uint8_t *key, size_t key_len,
                           edgefwd_write_fn write, void *ctx)
{
    size_t size;
    int rc;
    ef_out o;
    ef_cobs_t cobs;
    if (write == NULL) return EDGEFWD_E_INVALID;
    rc = ef_prepare(type, obj, key, key_len, &size);
    if (rc != 0) return rc;
    memset(&o, 0, sizeof o);
    cobs.n = 0;
    o.cobs = &cobs;
    o.write = write;
    o.ctx = ctx;
    ef_emit_frame(&o, type, obj, key, key_len);
    ef_cobs_finish(&o);
    return o.err;
}

size_t edgefwd_event_frame_size(const edgefwd_event_t *e, bool with_tag)
{
    return ef_frame_size(EDGEFWD_TYPE_EVENT, e, with_tag);
}

int edgefwd_encode_event(const edgefwd_event_t *e, const uint8_t *key, size_t key_len,
                         uint8_t *out, size_t out_cap, size_t *out_len)
{
    return ef_encode_buf(EDGEFWD_TYPE_EVENT, e, key, key_len, out, out_cap, out_len);
}

int edgefwd_write_event(const edgefwd_event_t *e, const uint8_t *key, size_t key_len,
                        edgefwd_write_fn write, void *ctx)
{
    return ef_write_stream(EDGEFWD_TYPE_EVENT, e, key, key_len, write, ctx);
}

size_t edgefwd_hello_frame_size(const edgefwd_hello_t *h, bool with_tag)
{
    return ef_frame_size(EDGEFWD_TYPE_HELLO, h, with_tag);
}

int edgefwd_encode_hello(const edgefwd_hello_t *h, const uint8_t *key, size_t key_len,
                         uint8_t *out, size_t out_cap, size_t *out_len)
{
    return ef_encode_buf(EDGEFWD_TYPE_HELLO, h, key, key_len, out, out_cap, out_len);
}

int edgefwd_write_hello(const edgefwd_hello_t *h, const uint8_t *key, size_t key_len,
                        edgefwd_write_fn write, void *ctx)
{
    return ef_write_stream(EDGEFWD_TYPE_HELLO, h, key, key_len, write, ctx);
}

int edgefwd_encode_ack(const char *device_id, uint64_t seq, uint8_t *out, size_t out_cap,
                       size_t *out_len)
{
    ef_ack_t a;
    a.device_id = device_id;
    a.seq = seq;
    return ef_encode_buf(EDGEFWD_TYPE_ACK, &a, NULL, 0, out, out_cap, out_len);
}

/* ---- Reading frames ------------------------------------------------------------------------- */

int edgefwd_frame_check(const uint8_t *frame, size_t len, uint8_t *type, const uint8_t **body,
                        size_t *body_len)
{
    uint32_t stored;
    if (frame == NULL || len < EDGEFWD_MIN_FRAME_SIZE) return EDGEFWD_E_FRAME;
    if (len > EDGEFWD_MAX_FRAME_SIZE) return EDGEFWD_E_TOO_LARGE;
    stored = (uint32_t)frame[len - 4] | ((uint32_t)frame[len - 3] << 8) |
             ((uint32_t)frame[len - 2] << 16) | ((uint32_t)frame[len - 1] << 24);
    if (edgefwd_crc32c(0, frame, len - 4u) != stored) return EDGEFWD_E_CRC;
    if (frame[0] != EDGEFWD_PROTOCOL_VERSION) return EDGEFWD_E_FRAME;
    if (type != NULL) *type = frame[1];
    if (body != NULL) *body = frame + 2;
    if (body_len != NULL) *body_len = len - 6u;
    return EDGEFWD_OK;
}

int edgefwd_parse_ack(const uint8_t *frame, size_t len, char *device_id_out, size_t cap,
                      uint64_t *seq)
{
    uint8_t type = 0;
    const uint8_t *body = NULL;
    size_t body_len = 0, n, i;
    char id[EDGEFWD_DEVICE_ID_MAX + 1u];
    uint64_t s = 0;
    int rc = edgefwd_frame_check(frame, len, &type, &body, &body_len);
    if (rc != 0) return rc;
    if (type != EDGEFWD_TYPE_ACK || body_len < 1u) return EDGEFWD_E_FRAME;
    n = body[0];
    if (n < 1u || n > EDGEFWD_DEVICE_ID_MAX || body_len != 1u + n + 8u) return EDGEFWD_E_FRAME;
    memcpy(id, body + 1, n);
    id[n] = '\0';
    if (!ef_ascii_ok(id, 1u, EDGEFWD_DEVICE_ID_MAX, true)) return EDGEFWD_E_FRAME;
    for (i = 0; i < 8u; i++) s |= (uint64_t)body[1u + n + i] << (8u * i);
    if (device_id_out != NULL) {
        if (cap < n + 1u) return EDGEFWD_E_BUFFER;
        memcpy(device_id_out, id, n + 1u);
    }
    if (seq != NULL) *seq = s;
    return EDGEFWD_OK;
}

int edgefwd_ack_rx_push(edgefwd_ack_rx_t *rx, uint8_t byte, char *device_id_out, size_t cap,
                        uint64_t *seq)
{
    size_t n = 0, len;
    int rc;
    if (rx == NULL) return EDGEFWD_E_INVALID;
    if (byte != 0u) {
        if (rx->len < sizeof rx->buf) rx->buf[rx->len++] = byte;
        else rx->overflow = true;
        return 0;
    }
    len = rx->len;
    rx->len = 0;
    if (rx->overflow) {
        rx->overflow = false;
        return EDGEFWD_E_TOO_LARGE;
    }
    if (len == 0u) return 0; /* empty frame between delimiters: ignored, as the gateway does */
    rc = edgefwd_cobs_decode(rx->buf, len, rx->buf, sizeof rx->buf, &n);
    if (rc == 0) rc = edgefwd_parse_ack(rx->buf, n, device_id_out, cap, seq);
    return rc == 0 ? 1 : rc;
}

/* ---- COBS ------------------------------------------------------------------------------------ */

int edgefwd_write_stream_frame(const uint8_t *frame, size_t len, edgefwd_write_fn write, void *ctx)
{
    static const uint8_t one = 0x01u, zero = 0x00u;
    size_t i = 0;
    if (write == NULL || (frame == NULL && len != 0u)) return EDGEFWD_E_INVALID;
    for (;;) {
        size_t run = 0;
        uint8_t code;
        while (run < 254u && i + run < len && frame[i + run] != 0u) run++;
        code = (uint8_t)(run + 1u);
        if (write(ctx, &code, 1) != 0) return EDGEFWD_E_WRITE;
        if (run > 0u && write(ctx, frame + i, run) != 0) return EDGEFWD_E_WRITE;
        i += run;
        if (i >= len) break;      /* no implied zero after the last block */
        if (run == 254u) continue; /* a full block implies no zero */
        i++;                      /* the zero this block stands for */
        if (i == len) {           /* the frame ended with a zero: one empty block says so */
            if (write(ctx, &one, 1) != 0) return EDGEFWD_E_WRITE;
            break;
        }
    }
    return write(ctx, &zero, 1) != 0 ? EDGEFWD_E_WRITE : EDGEFWD_OK;
}

typedef struct {
    uint8_t *out;
    size_t cap, len;
    bool full;
} ef_mem_t;

static int ef_mem_write(void *ctx, const uint8_t *buf, size_t len)
{
    ef_mem_t *m = (ef_mem_t *)ctx;
    if (len > m->cap - m->len) {
        m->full = true;
        return -1;
    }
    memcpy(m->out + m->len, buf, len);
    m->len += len;
    return 0;
}

int edgefwd_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    ef_mem_t m;
    int rc;
    if (out_len == NULL || (out == NULL && out_cap != 0u)) return EDGEFWD_E_INVALID;
    *out_len = 0;
    m.out = out;
    m.cap = out_cap;
    m.len = 0;
    m.full = false;
    rc = edgefwd_write_stream_frame(in, len, ef_mem_write, &m);
    if (rc == EDGEFWD_E_WRITE && m.full) rc = EDGEFWD_E_BUFFER;
    if (rc == 0) *out_len = m.len;
    return rc;
}

int edgefwd_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    size_t i = 0, o = 0, k;
    if (out_len == NULL || (in == NULL && len != 0u) || (out == NULL && out_cap != 0u)) {
        return EDGEFWD_E_INVALID;
    }
    *out_len = 0;
    if (len > 0u && in[len - 1u] == 0u) len--; /* one trailing delimiter */
    while (i < len) {
        uint8_t code = in[i++];
        size_t run = (size_t)code - 1u;
        if (code == 0u || run > len - i) return EDGEFWD_E_COBS;
        for (k = 0; k < run; k++) {
            if (in[i + k] == 0u) return EDGEFWD_E_COBS;
        }
        if (run > out_cap - o) return EDGEFWD_E_BUFFER;
        if (run > 0u) memmove(out + o, in + i, run); /* o < i: safe in place */
        o += run;
        i += run;
        if (code != 0xFFu && i < len) {
            if (o >= out_cap) return EDGEFWD_E_BUFFER;
            out[o++] = 0u;
        }
    }
    *out_len = o;
    return EDGEFWD_OK;
}

const char *edgefwd_strerror(int code)
{
    switch (code) {
    case EDGEFWD_OK: return "EDGEFWD_OK";
    case EDGEFWD_E_INVALID: return "EDGEFWD_E_INVALID";
    case EDGEFWD_E_TOO_LARGE: return "EDGEFWD_E_TOO_LARGE";
    case EDGEFWD_E_BUFFER: return "EDGEFWD_E_BUFFER";
    case EDGEFWD_E_WRITE: return "EDGEFWD_E_WRITE";
    case EDGEFWD_E_UNSUPPORTED: return "EDGEFWD_E_UNSUPPORTED";
    case EDGEFWD_E_COBS: return "EDGEFWD_E_COBS";
    case EDGEFWD_E_CRC: return "EDGEFWD_E_CRC";
    case EDGEFWD_E_FRAME: return "EDGEFWD_E_FRAME";
    default: return "EDGEFWD_E_?";
    }
}

#ifdef EDGEFWD_TEST_INTERNALS
/* Seams for the host tests only (test/harness.h declares them). */
uint64_t edgefwd_test_f32_to_f64(uint32_t f);
uint64_t edgefwd_test_f32_to_f64(uint32_t f) { return ef_f32_to_f64(f); }

/* Push bytes through the streaming COBS sink used by edgefwd_write_event. */
int edgefwd_test_cobs_push(const uint8_t *in, size_t len, edgefwd_write_fn write, void *ctx);
int edgefwd_test_cobs_push(const uint8_t *in, size_t len, edgefwd_write_fn write, void *ctx)
{
    ef_out o;
    ef_cobs_t cobs;
    size_t i;
    memset(&o, 0, sizeof o);
    cobs.n = 0;
    o.cobs = &cobs;
    o.write = write;
    o.ctx = ctx;
    for (i = 0; i < len; i += 7u) ef_put(&o, in + i, len - i < 7u ? len - i : 7u);
    ef_cobs_finish(&o);
    return o.err;
}
#endif
