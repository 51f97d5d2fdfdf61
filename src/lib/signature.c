/* Signed jobs and secret files (see signature.h for the format).
 *
 * The MAC runs over the four parts in turn (worker, id, timestamp, body,
 * with "\n" between them) without building the message in memory, so a
 * large body costs no copy. Verification decodes the received hex into 32
 * bytes and compares those with CRYPTO_memcmp: how long the comparison
 * takes tells an attacker nothing about how many bytes matched. Parsing
 * the received header is not constant time, and need not be: it depends
 * only on what the sender already knows. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <warren/log.h>
#include "config.h"
#include "job.h"
#include "signature.h"

#define DIGEST_LEN 32
#define PREFIX_LEN (sizeof WARREN_SIG_PREFIX - 1)

struct warren_sig_key {
    unsigned char *bytes;
    size_t len;
    EVP_MAC *mac; /* HMAC, fetched once */
};

/* One part of the signed text. */
struct part {
    const void *p;
    size_t n;
};

/* ---- keys ------------------------------------------------------------- */

static warren_status read_key_file(int fd, const char *path, unsigned char *buf, size_t cap,
                                   size_t *len, warren_error *err)
{
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return warren_error_set(err, WARREN_EIO, "cannot read signing key file %s: %s",
                                    path, strerror(errno));
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *len = n;
    return WARREN_OK;
}

static warren_status check_key_file(int fd, const char *path, warren_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return warren_error_set(err, WARREN_EIO, "cannot read signing key file %s: %s", path,
                                strerror(errno));
    if (!S_ISREG(st.st_mode))
        return warren_error_set(err, WARREN_ECONFIG,
                                "signing key file %s is not a regular file", path);
    if (st.st_size > WARREN_SIG_KEY_MAX + 1)
        return warren_error_set(err, WARREN_ECONFIG,
                                "signing key file %s is larger than %d bytes", path,
                                WARREN_SIG_KEY_MAX);
    return WARREN_OK;
}

warren_status warren__sig_key_load(struct warren_sig_key **out, const char *path,
                                   warren_error *err)
{
    *out = NULL;
    if (!path || !path[0])
        return warren_error_set(err, WARREN_EINVAL, "no signing key file given");
    /* O_NONBLOCK: a FIFO put in the key's place must not hang the host
     * (fstat refuses it next). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return warren_error_set(err, WARREN_EIO, "cannot open signing key file %s: %s", path,
                                strerror(errno));
    struct warren_sig_key *key = calloc(1, sizeof *key);
    /* One byte more than allowed, to tell "too large" from "just fits"
     * (a file may grow between fstat and read). */
    if (key)
        key->bytes = malloc(WARREN_SIG_KEY_MAX + 2);
    warren_status st = key && key->bytes ? check_key_file(fd, path, err)
                                         : warren_error_set(err, WARREN_ENOMEM, "out of memory");
    if (st == WARREN_OK)
        st = read_key_file(fd, path, key->bytes, WARREN_SIG_KEY_MAX + 2, &key->len, err);
    close(fd);
    if (st == WARREN_OK && key->len && key->bytes[key->len - 1] == '\n')
        key->len--;
    if (st == WARREN_OK && key->len > WARREN_SIG_KEY_MAX)
        st = warren_error_set(err, WARREN_ECONFIG, "signing key file %s is larger than %d bytes",
                              path, WARREN_SIG_KEY_MAX);
    if (st == WARREN_OK && key->len == 0)
        st = warren_error_set(err, WARREN_ECONFIG, "signing key file %s is empty", path);
    if (st == WARREN_OK && !(key->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)))
        st = warren_error_set(err, WARREN_ENOMEM, "OpenSSL has no HMAC");
    if (st != WARREN_OK) {
        warren__sig_key_free(key);
        return st;
    }
    *out = key;
    return WARREN_OK;
}

void warren__sig_key_free(struct warren_sig_key *key)
{
    if (!key)
        return;
    if (key->bytes) {
        OPENSSL_cleanse(key->bytes, WARREN_SIG_KEY_MAX + 2);
        free(key->bytes);
    }
    EVP_MAC_free(key->mac);
    free(key);
}

/* ---- the MAC ---------------------------------------------------------- */

/* HMAC-SHA256 of the parts joined by "\n". 0 ok, -1 when OpenSSL fails. */
static int mac_parts(const struct warren_sig_key *key, const struct part *parts, size_t n,
                     unsigned char out[DIGEST_LEN])
{
    char digest_name[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(key->mac);
    int ok = ctx && EVP_MAC_init(ctx, key->bytes, key->len, params);
    for (size_t i = 0; ok && i < n; i++) {
        if (i > 0)
            ok = EVP_MAC_update(ctx, (const unsigned char *)"\n", 1);
        if (ok && parts[i].n > 0)
            ok = EVP_MAC_update(ctx, parts[i].p, parts[i].n);
    }
    size_t len = 0;
    if (ok)
        ok = EVP_MAC_final(ctx, out, &len, DIGEST_LEN) && len == DIGEST_LEN;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -1;
}

static void to_hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Lowercase hex only: "AB" is refused, so each digest has one spelling. */
static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int from_hex(const unsigned char *s, size_t len, unsigned char out[DIGEST_LEN])
{
    if (len != 2 * DIGEST_LEN)
        return -1;
    for (size_t i = 0; i < DIGEST_LEN; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* The timestamp part: decimal seconds, or nothing. */
static struct part timestamp_part(int present, uint64_t ts, char *buf, size_t size)
{
    struct part p = {buf, 0};
    if (present)
        p.n = (size_t)snprintf(buf, size, "%llu", (unsigned long long)ts);
    return p;
}

warren_status warren__sig_sign(const struct warren_sig_key *key, const char *worker,
                               const char *message_id, int has_timestamp, uint64_t timestamp,
                               const void *body, size_t body_len,
                               char out[WARREN_SIG_VALUE_SIZE], warren_error *err)
{
    char ts[24];
    struct part parts[4] = {
        {worker ? worker : "", worker ? strlen(worker) : 0},
        {message_id ? message_id : "", message_id ? strlen(message_id) : 0},
        timestamp_part(has_timestamp, timestamp, ts, sizeof ts),
        {body, body ? body_len : 0},
    };
    unsigned char digest[DIGEST_LEN];
    if (!key || mac_parts(key, parts, 4, digest) != 0)
        return warren_error_set(err, WARREN_EINVAL, "cannot compute the job's signature");
    memcpy(out, WARREN_SIG_PREFIX, PREFIX_LEN);
    to_hex(digest, DIGEST_LEN, out + PREFIX_LEN);
    OPENSSL_cleanse(digest, sizeof digest);
    return WARREN_OK;
}

/* The header's value as bytes; -1 when it is absent, -2 when it is not a
 * string. */
static int find_signature(const amqp_basic_properties_t *props, amqp_bytes_t *value)
{
    if (!props || !(props->_flags & AMQP_BASIC_HEADERS_FLAG))
        return -1;
    const amqp_table_entry_t *e = warren__table_find(&props->headers, WARREN_SIG_HEADER);
    if (!e)
        return -1;
    if (e->value.kind != AMQP_FIELD_KIND_UTF8 && e->value.kind != AMQP_FIELD_KIND_BYTES)
        return -2;
    *value = e->value.value.bytes;
    return 0;
}

enum warren_sig_result warren__signature_check_delivery(const struct warren_sig_key *key,
                                                        const char *worker,
                                                        const amqp_basic_properties_t *props,
                                                        const void *body, size_t len)
{
    amqp_bytes_t value = {0, NULL};
    int found = find_signature(props, &value);
    if (found == -1)
        return WARREN_SIG_MISSING;
    unsigned char given[DIGEST_LEN], want[DIGEST_LEN];
    if (found < 0 || !key || value.len != PREFIX_LEN + 2 * DIGEST_LEN || !value.bytes ||
        memcmp(value.bytes, WARREN_SIG_PREFIX, PREFIX_LEN) != 0 ||
        from_hex((const unsigned char *)value.bytes + PREFIX_LEN, value.len - PREFIX_LEN,
                 given) != 0)
        return WARREN_SIG_BAD;

    char ts[24];
    int has_id = (props->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && props->message_id.bytes;
    struct part parts[4] = {
        {worker ? worker : "", worker ? strlen(worker) : 0},
        {has_id ? props->message_id.bytes : "", has_id ? props->message_id.len : 0},
        timestamp_part((props->_flags & AMQP_BASIC_TIMESTAMP_FLAG) != 0, props->timestamp, ts,
                       sizeof ts),
        {body, body ? len : 0},
    };
    if (mac_parts(key, parts, 4, want) != 0)
        return WARREN_SIG_BAD;
    int same = CRYPTO_memcmp(given, want, DIGEST_LEN) == 0;
    OPENSSL_cleanse(want, sizeof want);
    return same ? WARREN_SIG_OK : WARREN_SIG_BAD;
}

const char *warren__signature_refusal(const struct warren_sig_key *key, int required,
                                      const char *worker,
                                      const amqp_basic_properties_t *props, const void *body,
                                      size_t len)
{
    if (!key)
        return NULL;
    switch (warren__signature_check_delivery(key, worker, props, body, len)) {
    case WARREN_SIG_OK:
        return NULL;
    case WARREN_SIG_MISSING:
        return required ? "missing signature" : NULL;
    case WARREN_SIG_BAD:
    default:
        return "signature does not match";
    }
}

/* ---- secret files ------------------------------------------------------ */

int warren__secret_file_warning(const char *path, const char *what, char *buf, size_t size)
{
    struct stat st;
    if (!path || stat(path, &st) != 0 || !(st.st_mode & 077))
        return 0;
    snprintf(buf, size,
             "%s: warning: %s can be read or changed by group or others (mode %04o); "
             "make it private: chmod 600 %s",
             path, what, (unsigned)(st.st_mode & 07777), path);
    return 1;
}

const char *warren__config_path(const struct warren_config *cfg, const char *path, char *buf,
                                size_t size)
{
    int n;
    if (!path)
        return NULL;
    if (path[0] == '/' || !cfg || !cfg->dir)
        n = snprintf(buf, size, "%s", path);
    else
        n = snprintf(buf, size, "%s/%s", cfg->dir, path);
    return n >= 0 && (size_t)n < size ? buf : NULL;
}

/* Whether a URL holds a password worth hiding ("guest" is public). */
static int url_has_secret(const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *at = strrchr(url, '@');
    const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    if (!scheme || !at || !colon || colon > at)
        return 0;
    size_t len = (size_t)(at - colon - 1);
    return len > 0 && !(len == 5 && strncmp(colon + 1, "guest", 5) == 0);
}

static int config_holds_password(const struct warren_config *cfg)
{
    const char *env = getenv("WARREN_URL");
    if (env && env[0])
        return 0; /* the URLs in cfg came from the environment */
    for (size_t i = 0; i < cfg->n_urls; i++)
        if (url_has_secret(cfg->urls[i]))
            return 1;
    return 0;
}

int warren__secret_warnings(const struct warren_config *cfg,
                            void (*emit)(const char *text, void *user), void *user)
{
    const struct {
        const char *path;
        const char *what;
        int in_config_dir; /* relative to the config's folder, not the cwd */
    } files[] = {
        {cfg->signing_key_file, "security.signing_key_file", 1},
        {cfg->password_file, "broker.password_file", 1},
        {cfg->tls.key, "broker.tls.key", 1},
        {cfg->web_token_file, "web.token_file", 1},
        {config_holds_password(cfg) ? cfg->path : NULL,
         "this config file, which holds a broker password,", 0},
    };
    int count = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4096], text[4096 * 2 + 256];
        const char *p = files[i].in_config_dir
                            ? warren__config_path(cfg, files[i].path, path, sizeof path)
                            : files[i].path;
        if (p && warren__secret_file_warning(p, files[i].what, text, sizeof text)) {
            emit(text, user);
            count++;
        }
    }
    return count;
}

static void log_warning(const char *text, void *user)
{
    (void)user;
    WARREN_LOG(WARREN_LOG_WARN, "security.permissions", "%s", text);
}

void warren__secret_warnings_log(const struct warren_config *cfg)
{
    warren__secret_warnings(cfg, log_warning, NULL);
}

static int resolve_one(const struct warren_config *cfg, char **field)
{
    if (!*field || (*field)[0] == '/' || !cfg->dir)
        return 0;
    size_t size = strlen(cfg->dir) + strlen(*field) + 2;
    char *abs = malloc(size);
    if (!abs)
        return -1;
    snprintf(abs, size, "%s/%s", cfg->dir, *field);
    free(*field);
    *field = abs;
    return 0;
}

warren_status warren__config_resolve_secret_paths(struct warren_config *cfg)
{
    char **fields[] = {&cfg->signing_key_file, &cfg->password_file, &cfg->web_token_file,
                       &cfg->tls.ca_cert,      &cfg->tls.cert,      &cfg->tls.key};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (resolve_one(cfg, fields[i]) != 0)
            return WARREN_ENOMEM;
    return WARREN_OK;
}

warren_status warren__security_preflight(struct warren_config *cfg, warren_error *err)
{
    if (warren__config_resolve_secret_paths(cfg) != WARREN_OK)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    warren__secret_warnings_log(cfg);
    if (!cfg->signing_key_file)
        return WARREN_OK;
    struct warren_sig_key *key = NULL;
    warren_status st = warren__sig_key_load(&key, cfg->signing_key_file, err);
    warren__sig_key_free(key);
    return st;
}
