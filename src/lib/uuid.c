/* Random (version 4) UUIDs, for job ids: the producer's when the caller
 * gives none, and the host's for a job that arrived without one.
 *
 * The bytes come from the kernel's pool (getrandom, else /dev/urandom),
 * read on every call: no state to reseed after fork, so two worker
 * processes never hand out the same id. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <warren/producer.h>

static int fill_random(unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == len)
        return 0;
    /* Kernels before 3.17 have no getrandom; /dev/urandom is the same pool. */
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    return got == len ? 0 : -1;
}

/* Last resort when no random source answers (a sandbox without /dev):
 * the ids must still differ, so mix the clock, the pid and a counter. */
static void fill_fallback(unsigned char *buf, size_t len)
{
    static unsigned long long counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long x = (unsigned long long)ts.tv_sec * 1000000007ULL ^
                           (unsigned long long)ts.tv_nsec ^
                           ((unsigned long long)getpid() << 32) ^ ++counter;
    for (size_t i = 0; i < len; i++) {
        /* splitmix64 */
        unsigned long long z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        buf[i] = (unsigned char)(z ^ (z >> 31));
    }
}

void warren_uuid(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    if (fill_random(b, sizeof b) != 0)
        fill_fallback(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    size_t n = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[n++] = '-';
        out[n++] = hex[b[i] >> 4];
        out[n++] = hex[b[i] & 0x0f];
    }
    out[n] = '\0';
}
