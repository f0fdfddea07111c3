/*
 * edgefwd.h - device-side encoder for the edgefwd device protocol, version 1
 * (firmware-bridge/PROTOCOL.md; the message schema is proto/edgefwd/v1/edgefwd.proto).
 *
 * C99, no malloc, no floating-point formatting, no library calls beyond memcpy/memset/memcmp.
 * Every function writes either into a caller buffer (checked against its capacity) or through a
 * caller write callback; nothing is allocated and nothing is kept between calls.
 *
 * Compile-time options (define before compiling edgefwd.c, e.g. with -D):
 *   EDGEFWD_WITH_HMAC        compile SHA-256 and HMAC-SHA256 in, for the optional 16-byte
 *                            authentication tag (PROTOCOL.md section 5). Off by default: it costs
 *                            about 1.5 KB of code (see README.md). Without it, passing a key
 *                            returns EDGEFWD_E_UNSUPPORTED.
 *   EDGEFWD_MAX_FRAME_SIZE   the gateway's maxFrameSize (default 16384). An event whose frame
 *                            would be longer is refused with EDGEFWD_E_TOO_LARGE.
 *
 * Errors are negative ints (EDGEFWD_E_*); 0 is success. The check order is the gateway's:
 * EDGEFWD_E_TOO_LARGE where the gateway would say `oversize` (the frame length is checked first,
 * field rules after), EDGEFWD_E_INVALID where it would say `bad_field`.
 */
#ifndef EDGEFWD_H
#define EDGEFWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef EDGEFWD_MAX_FRAME_SIZE
#define EDGEFWD_MAX_FRAME_SIZE 16384u
#endif

/* Frame envelope (PROTOCOL.md section 1). */
#define EDGEFWD_PROTOCOL_VERSION 0x01u
#define EDGEFWD_TYPE_EVENT 0x01u
#define EDGEFWD_TYPE_EVENT_MSGPACK 0x02u
#define EDGEFWD_TYPE_ACK 0x03u
#define EDGEFWD_TYPE_HELLO 0x04u
#define EDGEFWD_TYPE_TAG_FLAG 0x80u   /* bit 7 of type: a 16-byte tag follows the body */
#define EDGEFWD_TAG_LEN 16u
#define EDGEFWD_MIN_FRAME_SIZE 6u     /* version, type, empty body, CRC32C */
#define EDGEFWD_KEY_MIN 16u           /* pre-shared key length range, PROTOCOL.md section 5 */
#define EDGEFWD_KEY_MAX 64u

/* Field rules (PROTOCOL.md section 3). */
#define EDGEFWD_DEVICE_ID_MAX 64u
#define EDGEFWD_STREAM_MAX 64u
#define EDGEFWD_NUMBERS_MAX 32u
#define EDGEFWD_TEXT_MAX 1024u
#define EDGEFWD_RAW_MAX 8192u
#define EDGEFWD_TAGS_MAX 8u
#define EDGEFWD_TAG_KEY_MAX 32u
#define EDGEFWD_TAG_VALUE_MAX 64u
#define EDGEFWD_FIRMWARE_VERSION_MAX 64u
#define EDGEFWD_SEQ_MAX 9007199254740991ull /* 2^53 - 1: seq, device time and uptime */

/* Priority (edgefwd.v1.Priority). */
#define EDGEFWD_PRIORITY_LOW 0u
#define EDGEFWD_PRIORITY_NORMAL 1u
#define EDGEFWD_PRIORITY_HIGH 2u
#define EDGEFWD_PRIORITY_CRITICAL 3u

/* DeviceHello.capabilities bits. */
#define EDGEFWD_CAP_ACKS 0x1u

/* The largest raw ack frame: version, type, id length, 64-byte id, seq, CRC32C. */
#define EDGEFWD_ACK_FRAME_MAX (2u + 1u + EDGEFWD_DEVICE_ID_MAX + 8u + 4u)
/* Worst-case COBS size of n input bytes, including the 0x00 delimiter. */
#define EDGEFWD_COBS_MAX(n) ((n) + (n) / 254u + 2u)

/* Error codes. Never reused; README.md documents each. */
#define EDGEFWD_OK 0
#define EDGEFWD_E_INVALID (-1)     /* an argument or a field breaks a rule (gateway: bad_field) */
#define EDGEFWD_E_TOO_LARGE (-2)   /* frame longer than EDGEFWD_MAX_FRAME_SIZE (gateway: oversize) */
#define EDGEFWD_E_BUFFER (-3)      /* the caller's output buffer is too small; nothing was written */
#define EDGEFWD_E_WRITE (-4)       /* the write callback failed; no further write was attempted */
#define EDGEFWD_E_UNSUPPORTED (-5) /* a key was given but EDGEFWD_WITH_HMAC was not compiled in */
#define EDGEFWD_E_COBS (-6)        /* decoding: invalid COBS (gateway: bad_cobs) */
#define EDGEFWD_E_CRC (-7)         /* decoding: CRC32C mismatch (gateway: bad_crc) */
#define EDGEFWD_E_FRAME (-8)       /* decoding: bad version, wrong type, too short, bad layout */

/* Value kinds for edgefwd_event_t.value_kind (the DeviceFrame `value` oneof). */
#define EDGEFWD_VALUE_NONE 0
#define EDGEFWD_VALUE_NUMBER 1
#define EDGEFWD_VALUE_NUMBERS 2
#define EDGEFWD_VALUE_TEXT 3
#define EDGEFWD_VALUE_RAW 4

/*
 * Write callback: deliver all `len` bytes and return 0, or return non-zero on failure (then the
 * encoder stops at once and returns EDGEFWD_E_WRITE; it never calls the callback again). A partial
 * write is the callback's business: loop until done or fail. Chunks are at most 256 bytes.
 */
typedef int (*edgefwd_write_fn)(void *ctx, const uint8_t *buf, size_t len);

/* One entry of the numbers map: key of UTF-8, NUL-terminated (section 3 sets no length). */
typedef struct {
    const char *key;
    double value;
} edgefwd_number_t;

/* One tag: key 1-32 bytes, value 0-64 bytes, UTF-8, NUL-terminated. */
typedef struct {
    const char *key;
    const char *value;
} edgefwd_tag_t;

/*
 * One event (DeviceFrame). Zero-initialise it ({0} or memset) and set what you have; strings are
 * NUL-terminated except `text`, which has an explicit length. Map entries are encoded in the order
 * given (duplicate keys are refused: they would silently collapse in the gateway's map).
 */
typedef struct {
    const char *device_id;       /* required: 1-64 bytes of 0x21-0x7E, none of / + # */
    uint64_t seq;                /* 0 .. 2^53-1 */
    bool has_device_time;
    uint64_t device_time_ms;     /* Unix ms, sent when has_device_time (even if 0); <= 2^53-1 */
    bool has_uptime;
    uint64_t uptime_ms;          /* ms since boot, sent when has_uptime (even if 0); <= 2^53-1 */
    uint8_t priority;            /* EDGEFWD_PRIORITY_*; 0 (low) is the protobuf default */
    const char *stream;          /* NULL or 0-64 bytes of 0x21-0x7E */
    int value_kind;              /* EDGEFWD_VALUE_* */
    double number;               /* EDGEFWD_VALUE_NUMBER (sent even when 0) */
    const edgefwd_number_t *numbers; /* EDGEFWD_VALUE_NUMBERS: up to 32 entries */
    size_t numbers_len;
    const char *text;            /* EDGEFWD_VALUE_TEXT: UTF-8, up to 1024 bytes */
    size_t text_len;
    const uint8_t *raw;          /* EDGEFWD_VALUE_RAW: up to 8192 bytes */
    size_t raw_len;
    const edgefwd_tag_t *tags;   /* up to 8 */
    size_t tags_len;
} edgefwd_event_t;

/* hello (DeviceHello), sent once after connecting. */
typedef struct {
    const char *device_id;        /* same rules as an event's */
    const char *firmware_version; /* NULL or 0-64 bytes of UTF-8 */
    uint32_t capabilities;        /* EDGEFWD_CAP_* bits */
} edgefwd_hello_t;

/* ---- Events and hellos ------------------------------------------------------------------- */

/*
 * Sizing pass: the length of the raw frame (version to CRC, before COBS) of this event, with or
 * without the 16-byte tag, whether or not its fields are valid. 0 if it cannot be encoded at all
 * (e == NULL, an unknown value_kind, a NULL pointer with a non-zero length). Any result above
 * EDGEFWD_MAX_FRAME_SIZE means oversize (encoding refuses it) and is then only a lower bound: the
 * pass stops counting once past the maximum, so a huge length is never walked.
 */
size_t edgefwd_event_frame_size(const edgefwd_event_t *e, bool with_tag);

/* 0 if the event keeps every field rule of PROTOCOL.md section 3, else EDGEFWD_E_INVALID. */
int edgefwd_event_check(const edgefwd_event_t *e);

/*
 * Encode the raw frame of an event (type 0x01, or 0x81 with a tag when key != NULL) into out.
 * key: NULL/0 for no tag, or a 16-64 byte pre-shared key. On success *out_len is the frame length.
 * On EDGEFWD_E_BUFFER, *out_len is the length needed; on other errors 0. Nothing is written to
 * out unless the whole frame fits. For UDP, send out[0..*out_len) as one datagram; for a byte
 * stream, COBS-encode it (edgefwd_cobs_encode / edgefwd_write_stream_frame), or use
 * edgefwd_write_event, which needs no frame buffer at all.
 */
int edgefwd_encode_event(const edgefwd_event_t *e, const uint8_t *key, size_t key_len,
                         uint8_t *out, size_t out_cap, size_t *out_len);

/*
 * Stream an event as it goes on a byte stream (COBS-encoded frame + 0x00 delimiter) through the
 * write callback, without a frame buffer: the protobuf body, CRC and tag are computed on the fly and
 * COBS needs one 256-byte block (stack in all, measured with -fstack-usage on x86-64: about 0.6 KB,
 * 0.9 KB with HMAC; less on 32-bit targets). All checks are done before the first byte is written,
 * so an invalid event writes nothing; a failing callback leaves a partial frame on the wire, which
 * the gateway drops at the next 0x00 (send a 0x00 before the next frame if the link may recover).
 */
int edgefwd_write_event(const edgefwd_event_t *e, const uint8_t *key, size_t key_len,
                        edgefwd_write_fn write, void *ctx);

size_t edgefwd_hello_frame_size(const edgefwd_hello_t *h, bool with_tag);
int edgefwd_encode_hello(const edgefwd_hello_t *h, const uint8_t *key, size_t key_len,
                         uint8_t *out, size_t out_cap, size_t *out_len);
int edgefwd_write_hello(const edgefwd_hello_t *h, const uint8_t *key, size_t key_len,
                        edgefwd_write_fn write, void *ctx);

/* ---- Acks (gateway -> device) ------------------------------------------------------------ */

/*
 * Parse a raw ack frame (after COBS decoding): checks length, CRC32C, version and type 0x03
 * (a tagged ack is refused: the gateway does not tag acks) and the body layout. Copies the device
 * id NUL-terminated into device_id_out (cap must be >= id length + 1, else EDGEFWD_E_BUFFER).
 * Returns 0, EDGEFWD_E_CRC, EDGEFWD_E_FRAME, EDGEFWD_E_BUFFER or EDGEFWD_E_INVALID.
 */
int edgefwd_parse_ack(const uint8_t *frame, size_t len, char *device_id_out, size_t cap,
                      uint64_t *seq);

/* Encode an ack frame (the gateway's side; for tests and simulators). */
int edgefwd_encode_ack(const char *device_id, uint64_t seq, uint8_t *out, size_t out_cap,
                       size_t *out_len);

/*
 * Byte-at-a-time ack receiver for a UART or socket: feed every received byte. Holds one COBS frame
 * (at most EDGEFWD_COBS_MAX(EDGEFWD_ACK_FRAME_MAX) bytes); a longer run is discarded up to the next
 * 0x00, as the gateway does. Returns 1 when an ack was parsed (id and seq filled in), 0 when more
 * bytes are needed (or on an empty frame), or a negative error for a bad frame (the receiver is
 * ready for the next frame either way). Zero-initialise before first use.
 */
typedef struct {
    uint8_t buf[EDGEFWD_COBS_MAX(EDGEFWD_ACK_FRAME_MAX)];
    size_t len;
    bool overflow;
} edgefwd_ack_rx_t;

int edgefwd_ack_rx_push(edgefwd_ack_rx_t *rx, uint8_t byte, char *device_id_out, size_t cap,
                        uint64_t *seq);

/* ---- Frame envelope, COBS, CRC ------------------------------------------------------------ */

/*
 * Check a raw frame's envelope: length >= 6, CRC32C, version. On success *type is the type byte
 * (tag bit included) and *body / *body_len cover everything between type and CRC (the tag, if
 * any, is the last 16 bytes of that). Returns 0, EDGEFWD_E_FRAME, EDGEFWD_E_CRC or
 * EDGEFWD_E_TOO_LARGE.
 */
int edgefwd_frame_check(const uint8_t *frame, size_t len, uint8_t *type, const uint8_t **body,
                        size_t *body_len);

/* COBS-encode in[0..len) into out and append the 0x00 delimiter. EDGEFWD_E_BUFFER if
 * out_cap < the encoded length (out may then hold a partial result). out must not overlap in. */
int edgefwd_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap,
                        size_t *out_len);

/*
 * COBS-decode one frame: in[0..len) are the bytes between two delimiters (one trailing 0x00 is
 * accepted and ignored). out may equal in (decoding in place); otherwise they must not overlap.
 * Returns 0 or EDGEFWD_E_COBS (a block running past the end, or a 0x00 inside) or EDGEFWD_E_BUFFER.
 */
int edgefwd_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap,
                        size_t *out_len);

/*
 * Write an already encoded raw frame to a byte stream: COBS through the callback, then 0x00.
 * Zero-copy: the callback gets each block's code byte, then a pointer into `frame` for the block.
 */
int edgefwd_write_stream_frame(const uint8_t *frame, size_t len, edgefwd_write_fn write,
                               void *ctx);

/* CRC32C (Castagnoli). Chain like zlib's crc32: crc = edgefwd_crc32c(0, p, n) for one buffer,
 * crc = edgefwd_crc32c(crc, next, m) to continue. edgefwd_crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t edgefwd_crc32c(uint32_t crc, const uint8_t *p, size_t len);

/* The name of an error code ("EDGEFWD_E_INVALID"), or "EDGEFWD_E_?" for an unknown one. */
const char *edgefwd_strerror(int code);

#ifdef EDGEFWD_WITH_HMAC
/* ---- SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104) ------------------------------------------ */
typedef struct {
    uint32_t h[8];
    uint64_t total;   /* bytes hashed so far */
    uint8_t block[64];
    size_t fill;
} edgefwd_sha256_t;

void edgefwd_sha256_init(edgefwd_sha256_t *s);
void edgefwd_sha256_update(edgefwd_sha256_t *s, const uint8_t *p, size_t len);
void edgefwd_sha256_final(edgefwd_sha256_t *s, uint8_t out[32]);

typedef struct {
    edgefwd_sha256_t inner;
    uint8_t k0[64];   /* the key, padded (or hashed if longer than 64 bytes) */
} edgefwd_hmac_t;

void edgefwd_hmac_init(edgefwd_hmac_t *m, const uint8_t *key, size_t key_len);
void edgefwd_hmac_update(edgefwd_hmac_t *m, const uint8_t *p, size_t len);
void edgefwd_hmac_final(edgefwd_hmac_t *m, uint8_t out[32]);
void edgefwd_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                         uint8_t out[32]);
#endif

#ifdef __cplusplus
}
#endif

#endif /* EDGEFWD_H */
