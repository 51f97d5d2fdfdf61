/* Internal: signed jobs (HMAC-SHA256) and the files that hold secrets.
 *
 * DESIGN: a job's signature is the header
 *     x-warren-signature: v1=<64 lowercase hex digits>
 * holding HMAC-SHA256 over "worker \n message_id \n timestamp \n body":
 * the worker name, the message_id property as sent (empty when absent),
 * the timestamp property in decimal Unix seconds (empty when absent) and
 * the body bytes. The key is the key file's bytes less one trailing
 * newline. The host compares digests in constant time (CRYPTO_memcmp).
 *
 * A key lives only in memory owned by struct warren_sig_key, is wiped
 * with OPENSSL_cleanse when freed, and is never written into an error
 * message or a log line: errors name the file, never its content.
 *
 * A key object is read-only after loading: one key may be used by several
 * threads at once (each call makes its own MAC context). */
#ifndef WARREN_SIGNATURE_H
#define WARREN_SIGNATURE_H

#include <stddef.h>
#include <stdint.h>
#include <amqp.h>
#include <warren/error.h>

struct warren_config;

#define WARREN_SIG_HEADER "x-warren-signature"
#define WARREN_SIG_PREFIX "v1="
/* "v1=" + 64 hex digits + NUL */
#define WARREN_SIG_VALUE_SIZE 68
/* Key files larger than this are refused (a key is a few dozen bytes). */
#define WARREN_SIG_KEY_MAX 4096

struct warren_sig_key;

enum warren_sig_result {
    WARREN_SIG_OK = 0,   /* present and matches */
    WARREN_SIG_MISSING,  /* no x-warren-signature header */
    WARREN_SIG_BAD,      /* present but wrong: not a string, not "v1=" + 64
                            lowercase hex digits, or another digest */
};

/* Reads a signing key from `path` into *out (new; free with
 * warren__sig_key_free). One trailing "\n" is not part of the key.
 * WARREN_EIO when the file cannot be read, WARREN_ECONFIG when it is not a
 * regular file, is empty or larger than WARREN_SIG_KEY_MAX bytes,
 * WARREN_ENOMEM. The error text names the file, never the key. */
warren_status warren__sig_key_load(struct warren_sig_key **out, const char *path,
                                   warren_error *err);

/* Wipes and frees a key. NULL does nothing. */
void warren__sig_key_free(struct warren_sig_key *key);

/* Writes the header value ("v1=" + lowercase hex) for a job into `out`.
 * `worker` and `message_id` may be NULL (empty); `has_timestamp` says
 * whether the timestamp property is set. WARREN_OK, or WARREN_ENOMEM /
 * WARREN_EINVAL when OpenSSL fails. */
warren_status warren__sig_sign(const struct warren_sig_key *key, const char *worker,
                               const char *message_id, int has_timestamp, uint64_t timestamp,
                               const void *body, size_t body_len,
                               char out[WARREN_SIG_VALUE_SIZE], warren_error *err);

/* Checks a delivery's signature. `worker` is the decoded worker name (the
 * `type` property, or the routing key); message_id, timestamp and the
 * x-warren-signature header come from `props` (NULL: no properties, so
 * MISSING). Constant-time comparison of the digests. */
enum warren_sig_result warren__signature_check_delivery(const struct warren_sig_key *key,
                                                        const char *worker,
                                                        const amqp_basic_properties_t *props,
                                                        const void *body, size_t len);

/* The host's rule in one call: NULL when the job may run, else the error
 * text for its bad_signature dead letter ("missing signature" when
 * `required` and the header is absent; "signature does not match" when a
 * header is present but wrong, whether or not signatures are required).
 * A NULL key accepts everything. */
const char *warren__signature_refusal(const struct warren_sig_key *key, int required,
                                      const char *worker,
                                      const amqp_basic_properties_t *props, const void *body,
                                      size_t len);

/* When the file at `path` can be read or written by group or others
 * (mode & 077), writes a warning naming `what` (e.g.
 * "security.signing_key_file") and the file into buf and returns 1;
 * otherwise (private, or missing: loading reports that) returns 0. */
int warren__secret_file_warning(const char *path, const char *what, char *buf, size_t size);

/* Every secret-permission warning of a config: signing_key_file,
 * password_file, web.token_file, broker.tls.key, and the config file
 * itself when one of its broker URLs carries a password other than the
 * well-known "guest" (unless WARREN_URL replaces them). Relative paths
 * are taken from the config's folder. Calls emit(text, user) for each;
 * returns how many. */
int warren__secret_warnings(const struct warren_config *cfg,
                            void (*emit)(const char *text, void *user), void *user);

/* Logs each of those warnings (level warn, msgid "security.permissions"). */
void warren__secret_warnings_log(const struct warren_config *cfg);

/* Makes a path from the config absolute against the config's folder:
 * absolute paths (and a NULL dir) are copied as they are. Returns buf, or
 * NULL when it does not fit. */
const char *warren__config_path(const struct warren_config *cfg, const char *path, char *buf,
                                size_t size);

/* Rewrites the secret and TLS paths of a loaded config (signing_key_file,
 * password_file, web.token_file, broker.tls.ca_cert/cert/key) as absolute
 * paths against its folder, so every process reads the same files
 * whatever its working directory. Idempotent. WARREN_OK or WARREN_ENOMEM. */
warren_status warren__config_resolve_secret_paths(struct warren_config *cfg);

/* What a host does with a freshly loaded config before it starts: makes
 * the secret paths absolute (warren__config_resolve_secret_paths), logs
 * each permission warning, and checks that the signing key (if any)
 * loads. WARREN_OK, or the key's error (the text names the file). */
warren_status warren__security_preflight(struct warren_config *cfg, warren_error *err);

#endif
