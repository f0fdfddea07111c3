/*
 * posix-send: send N events to an edgefwd gateway the way a device would, with the C encoder.
 *
 *   posix-send [options] udp HOST PORT   one raw frame per datagram (no acks on UDP)
 *   posix-send [options] tcp HOST PORT   COBS frames, a hello asking for acks, acks printed
 *   posix-send [options] tty PATH        the same over a serial line (raw mode, -b speed)
 *
 * Options: -d device id (posix-send), -n count (10), -r events per second (10; 0 = no pause),
 * -p priority 0-3 (1), -s stream (telemetry), -S first seq (1), -k hex key (16-64 bytes: tag
 * every frame), -b tty speed (115200), -w ms to wait for the last ack (3000), -v log each event.
 *
 * Exit status: 0 when every event was sent (udp) or acknowledged (tcp, tty); 1 on a usage or I/O
 * error; 3 when the last ack did not come within -w ms.
 *
 * UDP uses edgefwd_encode_event into a buffer (a datagram needs the whole frame); tcp and tty use
 * edgefwd_write_event, which COBS-encodes straight into write(2) with no frame buffer, as a
 * microcontroller writing to its UART would.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* glibc: termios speeds above 38400 */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "edgefwd.h"

typedef struct {
    const char *device_id;
    unsigned long count;
    double rate;
    unsigned priority;
    const char *stream;
    uint64_t first_seq;
    uint8_t key[EDGEFWD_KEY_MAX];
    size_t key_len;
    long baud;
    long wait_ms;
    int verbose;
} options_t;

static void usage(void)
{
    fprintf(stderr,
            "usage: posix-send [-d id] [-n count] [-r rate] [-p 0-3] [-s stream] [-S seq] [-k hexkey]\n"
            "                  [-b baud] [-w ms] [-v] (udp HOST PORT | tcp HOST PORT | tty PATH)\n");
    exit(1);
}

static uint64_t now_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int hex_key(const char *hex, uint8_t *out, size_t *len)
{
    size_t n = strlen(hex), i;
    if (n % 2 != 0 || n / 2 < EDGEFWD_KEY_MIN || n / 2 > EDGEFWD_KEY_MAX) return -1;
    for (i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

/* The write callback: all of buf, or -1. */
static int fd_write(void *ctx, const uint8_t *buf, size_t len)
{
    int fd = *(const int *)ctx;
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int connect_to(const char *host, const char *port, int socktype)
{
    struct addrinfo hints, *res, *ai;
    int fd = -1, rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "posix-send: %s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) fprintf(stderr, "posix-send: cannot connect to %s:%s: %s\n", host, port, strerror(errno));
    return fd;
}

static speed_t baud_constant(long baud)
{
    switch (baud) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
#ifdef B57600
    case 57600: return B57600;
#endif
#ifdef B115200
    case 115200: return B115200;
#endif
#ifdef B230400
    case 230400: return B230400;
#endif
    default: return 0;
    }
}

static int open_tty(const char *path, long baud)
{
    struct termios t;
    speed_t speed = baud_constant(baud);
    int fd;
    if (speed == 0) {
        fprintf(stderr, "posix-send: unsupported speed %ld\n", baud);
        return -1;
    }
    fd = open(path, O_RDWR | O_NOCTTY);
    if (fd < 0) {
        fprintf(stderr, "posix-send: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (tcgetattr(fd, &t) != 0) {
        fprintf(stderr, "posix-send: %s: not a terminal: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* Raw mode (cfmakeraw is not POSIX): 8N1, no echo, no translation of CR/LF or 0x00. */
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF);
    t.c_oflag &= ~(tcflag_t)OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB);
    t.c_cflag |= (tcflag_t)(CS8 | CREAD | CLOCAL);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    cfsetispeed(&t, speed);
    cfsetospeed(&t, speed);
    if (tcsetattr(fd, TCSANOW, &t) != 0) {
        fprintf(stderr, "posix-send: %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads what has arrived (waiting up to timeout_ms) and prints every ack for our device.
 * Returns -1 when the connection closed or failed. */
static int read_acks(int fd, edgefwd_ack_rx_t *rx, const options_t *o, int timeout_ms, uint64_t *acked)
{
    struct pollfd p;
    uint8_t buf[256];
    ssize_t n, i;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, timeout_ms) <= 0) return 0;
    n = read(fd, buf, sizeof buf);
    if (n == 0) {
        fprintf(stderr, "posix-send: the gateway closed the connection\n");
        return -1;
    }
    if (n < 0) return errno == EINTR || errno == EAGAIN ? 0 : -1;
    for (i = 0; i < n; i++) {
        char id[EDGEFWD_DEVICE_ID_MAX + 1];
        uint64_t seq;
        int rc = edgefwd_ack_rx_push(rx, buf[i], id, sizeof id, &seq);
        if (rc == 1 && strcmp(id, o->device_id) == 0) {
            printf("acked seq %llu\n", (unsigned long long)seq);
            fflush(stdout);
            if (seq > *acked) *acked = seq;
        } else if (rc < 0) {
            fprintf(stderr, "posix-send: bad frame from the gateway: %s\n", edgefwd_strerror(rc));
        }
    }
    return 0;
}

static void make_event(const options_t *o, uint64_t seq, edgefwd_event_t *e, const edgefwd_tag_t *tags)
{
    memset(e, 0, sizeof *e);
    e->device_id = o->device_id;
    e->seq = seq;
    e->has_device_time = true;
    e->device_time_ms = now_ms(CLOCK_REALTIME);
    e->has_uptime = true;
    e->uptime_ms = now_ms(CLOCK_MONOTONIC);
    e->priority = (uint8_t)o->priority;
    e->stream = o->stream;
    e->value_kind = EDGEFWD_VALUE_NUMBER;
    e->number = 20.0 + (double)(seq % 10u) * 0.5; /* a made-up reading */
    e->tags = tags;
    e->tags_len = 1;
}

static int run(const options_t *o, const char *mode, int fd)
{
    static const edgefwd_tag_t tags[1] = {{"source", "posix-send"}};
    const uint8_t *key = o->key_len > 0 ? o->key : NULL;
    int is_stream = strcmp(mode, "udp") != 0;
    edgefwd_ack_rx_t rx;
    uint64_t acked = 0, last = o->first_seq + o->count - 1, start = now_ms(CLOCK_MONOTONIC), deadline;
    unsigned long i;
    int rc;
    memset(&rx, 0, sizeof rx);
    if (is_stream) {
        static const uint8_t flush = 0x00; /* ends any garbage the line held before us */
        edgefwd_hello_t hello;
        hello.device_id = o->device_id;
        hello.firmware_version = "posix-send 1";
        hello.capabilities = EDGEFWD_CAP_ACKS;
        rc = fd_write(&fd, &flush, 1) != 0 ? EDGEFWD_E_WRITE : edgefwd_write_hello(&hello, key, o->key_len, fd_write, &fd);
        if (rc != 0) {
            fprintf(stderr, "posix-send: hello: %s%s%s\n", edgefwd_strerror(rc), rc == EDGEFWD_E_WRITE ? ": " : "",
                    rc == EDGEFWD_E_WRITE ? strerror(errno) : "");
            return 1;
        }
    }
    for (i = 0; i < o->count; i++) {
        uint64_t seq = o->first_seq + i;
        edgefwd_event_t e;
        if (o->rate > 0) { /* pace by the clock, reading acks while waiting */
            uint64_t due = start + (uint64_t)((double)i * 1000.0 / o->rate), now;
            while ((now = now_ms(CLOCK_MONOTONIC)) < due) {
                if (is_stream && read_acks(fd, &rx, o, (int)(due - now), &acked) != 0) return 1;
                if (!is_stream) {
                    struct timespec ts;
                    ts.tv_sec = (time_t)((due - now) / 1000u);
                    ts.tv_nsec = (long)((due - now) % 1000u) * 1000000L;
                    nanosleep(&ts, NULL);
                }
            }
        }
        make_event(o, seq, &e, tags);
        if (is_stream) {
            rc = edgefwd_write_event(&e, key, o->key_len, fd_write, &fd);
        } else {
            uint8_t frame[EDGEFWD_MAX_FRAME_SIZE];
            size_t len = 0;
            rc = edgefwd_encode_event(&e, key, o->key_len, frame, sizeof frame, &len);
            if (rc == 0 && send(fd, frame, len, 0) != (ssize_t)len) rc = EDGEFWD_E_WRITE;
        }
        if (rc != 0) {
            fprintf(stderr, "posix-send: seq %llu: %s%s%s\n", (unsigned long long)seq, edgefwd_strerror(rc),
                    rc == EDGEFWD_E_WRITE ? ": " : "", rc == EDGEFWD_E_WRITE ? strerror(errno) : "");
            return 1;
        }
        if (o->verbose) fprintf(stderr, "sent seq %llu\n", (unsigned long long)seq);
        if (is_stream && read_acks(fd, &rx, o, 0, &acked) != 0) return 1;
    }
    if (!is_stream) {
        printf("sent %lu events (UDP: no acks)\n", o->count);
        return 0;
    }
    deadline = now_ms(CLOCK_MONOTONIC) + (uint64_t)o->wait_ms;
    while (acked < last) {
        uint64_t now = now_ms(CLOCK_MONOTONIC);
        if (now >= deadline) break;
        if (read_acks(fd, &rx, o, (int)(deadline - now), &acked) != 0) break;
    }
    printf("sent %lu events, highest acked seq %llu\n", o->count, (unsigned long long)acked);
    return acked >= last ? 0 : 3;
}

int main(int argc, char **argv)
{
    options_t o;
    const char *mode;
    int c, fd, status;
    memset(&o, 0, sizeof o);
    o.device_id = "posix-send";
    o.count = 10;
    o.rate = 10;
    o.priority = 1;
    o.stream = "telemetry";
    o.first_seq = 1;
    o.baud = 115200;
    o.wait_ms = 3000;
    while ((c = getopt(argc, argv, "d:n:r:p:s:S:k:b:w:v")) != -1) {
        switch (c) {
        case 'd': o.device_id = optarg; break;
        case 'n': o.count = strtoul(optarg, NULL, 10); break;
        case 'r': o.rate = strtod(optarg, NULL); break;
        case 'p': o.priority = (unsigned)strtoul(optarg, NULL, 10); break;
        case 's': o.stream = optarg; break;
        case 'S': o.first_seq = strtoull(optarg, NULL, 10); break;
        case 'k':
            if (hex_key(optarg, o.key, &o.key_len) != 0) {
                fprintf(stderr, "posix-send: -k takes 16 to 64 bytes as hex\n");
                return 1;
            }
            break;
        case 'b': o.baud = strtol(optarg, NULL, 10); break;
        case 'w': o.wait_ms = strtol(optarg, NULL, 10); break;
        case 'v': o.verbose = 1; break;
        default: usage();
        }
    }
    if (optind >= argc || o.count == 0) usage();
    mode = argv[optind];
    signal(SIGPIPE, SIG_IGN); /* a closed connection is an error return, not a signal */
    if (strcmp(mode, "udp") == 0 || strcmp(mode, "tcp") == 0) {
        if (argc - optind != 3) usage();
        fd = connect_to(argv[optind + 1], argv[optind + 2], mode[0] == 'u' ? SOCK_DGRAM : SOCK_STREAM);
    } else if (strcmp(mode, "tty") == 0) {
        if (argc - optind != 2) usage();
        fd = open_tty(argv[optind + 1], o.baud);
    } else {
        usage();
        return 1;
    }
    if (fd < 0) return 1;
    {
        /* Check the options once, with the encoder's own rules, before sending anything. */
        edgefwd_event_t e;
        static const edgefwd_tag_t tags[1] = {{"source", "posix-send"}};
        make_event(&o, o.first_seq + o.count - 1, &e, tags);
        if (edgefwd_event_check(&e) != 0) {
            fprintf(stderr, "posix-send: the device id, stream, priority or seq break PROTOCOL.md section 3\n");
            close(fd);
            return 1;
        }
    }
    status = run(&o, mode, fd);
    close(fd);
    return status;
}
