/* For `make size`: a program that only streams events (the usual firmware), linked with
 * --gc-sections, so its size minus an empty program's is what the encoder costs in a device.
 * Built with -DPROBE_EMPTY it is the empty program. */
#include "edgefwd.h"

#ifndef PROBE_EMPTY
static int discard(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    return 0;
}
#endif

int main(void)
{
#ifdef PROBE_EMPTY
    return 0;
#else
    edgefwd_event_t e = {0};
    e.device_id = "d";
    return edgefwd_write_event(&e, (const uint8_t *)0, 0, discard, (void *)0);
#endif
}
