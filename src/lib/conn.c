/* One broker connection: errors, connecting (TLS included), declarations.
 * Publishing and consuming are in conn_io.c, URLs in conn_url.c; see
 * conn.h for the design. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <warren/log.h>
#include "config.h"
#include "conn_internal.h"

#define CONNECT_TIMEOUT_S 10


amqp_connection_state_t warren__conn_state(struct warren_conn *c)
{
    return c->state;
}

int warren__conn_broken(const struct warren_conn *c)
{
    return c->broken;
}

const char *warren__conn_url(const struct warren_conn *c)
{
    return c->url;
}

/* ---- errors ----------------------------------------------------------- */

warren_status warren__conn_fail_broken(struct warren_conn *c, warren_error *err, const char *what,
                                       const char *detail)
{
    c->broken = 1;
    return warren_error_set(err, WARREN_EBROKER, "%s: %s", what, detail);
}

/* Answers a server-sent close so the broker sees an orderly shutdown of
 * the channel; reopens the channel so the connection stays usable. */
static void answer_channel_close(struct warren_conn *c)
{
    amqp_channel_close_ok_t ok;
    amqp_send_method(c->state, CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    amqp_channel_open(c->state, CHANNEL);
    if (amqp_get_rpc_reply(c->state).reply_type != AMQP_RESPONSE_NORMAL) {
        c->broken = 1;
        return;
    }
    /* A reopened channel is no longer in confirm mode. */
    amqp_confirm_select(c->state, CHANNEL);
    if (amqp_get_rpc_reply(c->state).reply_type != AMQP_RESPONSE_NORMAL)
        c->broken = 1;
    c->next_seq = 1;
    c->base = 1;
    c->pubs_len = 0;
    /* Deliveries read on the old channel can no longer be acked: the
     * broker has put them back already. */
    warren__conn_drop_queued(c);
}

warren_status warren__conn_fold_exception(struct warren_conn *c, const amqp_method_t *m,
                                          const char *what, warren_error *err)
{
    if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *cl = m->decoded;
        warren_status code = WARREN_EBROKER;
        if (cl->reply_code == 404)
            code = WARREN_ENOTFOUND;
        else if (cl->reply_code == 406 && strncmp(what, "declare", 7) == 0)
            code = WARREN_EDRIFT; /* inequivalent arguments: config and broker differ */
        warren_error_set(err, code, "%s: %u %.*s", what, cl->reply_code,
                         (int)cl->reply_text.len, (const char *)cl->reply_text.bytes);
        answer_channel_close(c);
        return code;
    }
    if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *cl = m->decoded;
        amqp_connection_close_ok_t ok;
        amqp_send_method(c->state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        c->broken = 1;
        return warren_error_set(err, WARREN_EBROKER, "%s: connection closed by broker: %u %.*s",
                                what, cl->reply_code, (int)cl->reply_text.len,
                                (const char *)cl->reply_text.bytes);
    }
    c->broken = 1;
    return warren_error_set(err, WARREN_EBROKER, "%s: unexpected method 0x%08x", what,
                            (unsigned)m->id);
}

warren_status warren__conn_check_reply(struct warren_conn *c, const char *what,
                                       warren_error *err)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c->state);
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return WARREN_OK;
    case AMQP_RESPONSE_NONE:
        return warren__conn_fail_broken(c, err, what, "missing RPC reply");
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return warren__conn_fail_broken(c, err, what, amqp_error_string2(r.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        return warren__conn_fold_exception(c, &r.reply, what, err);
    }
    return warren__conn_fail_broken(c, err, what, "unknown reply");
}

/* ---- connecting ------------------------------------------------------- */

/* The password file's bytes less one trailing newline (and a "\r"
 * before it). Read with read(2), not stdio, so no copy is left in a
 * FILE buffer; the stack copy is wiped. */
char *warren__password_file_read(const char *path, warren_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        warren_error_set(err, WARREN_EIO, "cannot read password_file %s: %s", path,
                         strerror(errno));
        return NULL;
    }
    char buf[1024];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    if (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (n && buf[n - 1] == '\r')
        buf[--n] = '\0';
    char *secret = strdup(buf);
    OPENSSL_cleanse(buf, sizeof buf);
    if (!secret)
        warren_error_set(err, WARREN_ENOMEM, "out of memory");
    return secret;
}

/* ---- TLS ---------------------------------------------------------------- */

/* rabbitmq-c reports a failed certificate check as one status with no
 * reason. The verify callback below writes down the first problem OpenSSL
 * found (expired, unknown issuer, wrong name) so the error can say which.
 * Thread-local: a connection is opened by one thread, and the record is
 * cleared before each attempt. */
static _Thread_local struct {
    int error;           /* X509_V_ERR_*, 0 = none seen */
    int depth;           /* 0 = the broker's own certificate */
    char subject[256];
    char alert[64];      /* the first TLS alert the broker sent, or "" */
} tls_seen;

static int record_verify_error(int preverify_ok, X509_STORE_CTX *store)
{
    if (!preverify_ok && !tls_seen.error) {
        X509 *cert = X509_STORE_CTX_get_current_cert(store);
        tls_seen.error = X509_STORE_CTX_get_error(store);
        tls_seen.depth = X509_STORE_CTX_get_error_depth(store);
        tls_seen.subject[0] = '\0';
        if (cert)
            X509_NAME_oneline(X509_get_subject_name(cert), tls_seen.subject,
                              sizeof tls_seen.subject);
    }
    return preverify_ok; /* rabbitmq-c decides after the handshake */
}

/* A broker that refuses our client certificate says so with an alert,
 * which rabbitmq-c's later calls clear from OpenSSL's error queue before
 * we could read it; the info callback sees it as it arrives. */
static void record_alert(const SSL *ssl, int where, int value)
{
    (void)ssl;
    int code = value & 0xff;
    if ((where & SSL_CB_READ_ALERT) != SSL_CB_READ_ALERT || tls_seen.alert[0] ||
        code == SSL_AD_CLOSE_NOTIFY)
        return;
    /* OpenSSL 3.0 has no text for TLS 1.3's certificate_required (116). */
    const char *text = code == 116 ? "certificate required" : SSL_alert_desc_string_long(value);
    snprintf(tls_seen.alert, sizeof tls_seen.alert, "%s", text);
}

/* The reason of OpenSSL's most recent error in this thread, or NULL. */
static const char *openssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    return e ? ERR_reason_error_string(e) : NULL;
}

static warren_status tls_file_error(warren_error *err, const char *what, const char *path)
{
    const char *why = openssl_reason();
    if (path[0] && access(path, R_OK) != 0)
        why = strerror(errno); /* OpenSSL would only say "system lib" */
    warren_status st = warren_error_set(err, WARREN_ECONFIG, "cannot load %s %s%s%s", what,
                                        path, why ? ": " : "", why ? why : "");
    ERR_clear_error();
    return st;
}

/* Name check by OpenSSL during verification (RFC 6125, IP addresses
 * against IP SANs): rabbitmq-c's own check reads DNS names only, so
 * amqps://127.0.0.1 could never match a certificate for that address. */
static int set_expected_host(SSL_CTX *ctx, const char *host)
{
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    unsigned char addr[16];
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(param, host);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return X509_VERIFY_PARAM_set1_host(param, host, 0);
}

static warren_status tls_setup(amqp_socket_t *s, const char *host,
                               const struct warren_tls_conf *tls, warren_error *err)
{
    SSL_CTX *ctx = amqp_ssl_socket_get_context(s);
    int verify_peer = tls ? tls->verify_peer : 1;
    int verify_host = tls ? tls->verify_hostname : 1;
    ERR_clear_error();
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, record_verify_error);
    SSL_CTX_set_info_callback(ctx, record_alert);
    amqp_ssl_socket_set_verify_peer(s, verify_peer);
    /* With the chain verified, OpenSSL checks the name too (see above);
     * without it, only rabbitmq-c's DNS-name check is left. */
    amqp_ssl_socket_set_verify_hostname(s, verify_host && !verify_peer);
    if (verify_peer && verify_host && !set_expected_host(ctx, host))
        return warren_error_set(err, WARREN_ENOMEM, "cannot set the TLS host name to check");
    if (tls && tls->ca_cert) {
        if (amqp_ssl_socket_set_cacert(s, tls->ca_cert) != AMQP_STATUS_OK)
            return tls_file_error(err, "broker.tls.ca_cert", tls->ca_cert);
    } else if (verify_peer && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        return tls_file_error(err, "the system's CA certificates", "");
    }
    if (tls && tls->cert && tls->key) {
        if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert) != 1)
            return tls_file_error(err, "broker.tls.cert", tls->cert);
        if (SSL_CTX_use_PrivateKey_file(ctx, tls->key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            const char *why = openssl_reason();
            if (why && strstr(why, "mismatch")) {
                ERR_clear_error();
                return warren_error_set(err, WARREN_ECONFIG,
                                        "broker.tls.key %s does not match broker.tls.cert %s",
                                        tls->key, tls->cert);
            }
            return tls_file_error(err, "broker.tls.key", tls->key);
        }
    }
    return WARREN_OK;
}

static amqp_socket_t *make_socket(amqp_connection_state_t st, int ssl, const char *host,
                                  const struct warren_tls_conf *tls, warren_error *err)
{
    if (!ssl) {
        amqp_socket_t *s = amqp_tcp_socket_new(st);
        if (!s)
            warren_error_set(err, WARREN_ENOMEM, "cannot create TCP socket");
        return s;
    }
    amqp_socket_t *s = amqp_ssl_socket_new(st);
    if (!s) {
        warren_error_set(err, WARREN_ENOMEM, "cannot create TLS socket");
        return NULL;
    }
    return tls_setup(s, host, tls, err) == WARREN_OK ? s : NULL;
}

static int is_issuer_error(int e)
{
    return e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
           e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
           e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
           e == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
           e == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE ||
           e == X509_V_ERR_CERT_SIGNATURE_FAILURE;
}

/* Why the TLS certificate check failed, from what the callback saw. */
static void describe_verify_failure(char *buf, size_t size, const struct warren_tls_conf *tls,
                                    const char *host)
{
    int e = tls_seen.error;
    const char *ca = tls && tls->ca_cert ? tls->ca_cert : NULL;
    if (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH)
        snprintf(buf, size,
                 "hostname verification failed: the broker's certificate (%s) is not valid "
                 "for '%s' (broker.tls.verify_hostname)",
                 tls_seen.subject, host);
    else if (is_issuer_error(e))
        snprintf(buf, size,
                 "certificate verification failed: %s (at %s): the broker's certificate is "
                 "not from %s%s (broker.tls.ca_cert)",
                 X509_verify_cert_error_string(e), tls_seen.subject,
                 ca ? "the CA in " : "any of the system's CAs", ca ? ca : "");
    else if (e)
        snprintf(buf, size, "certificate verification failed: %s (%s%s)",
                 X509_verify_cert_error_string(e), tls_seen.subject,
                 tls_seen.depth ? ", a CA of the chain" : ", the broker's certificate");
    else
        snprintf(buf, size, "certificate verification failed: the broker sent no certificate");
}

/* One clear sentence for a failed amqp_socket_open: which TLS check
 * failed where we can tell, else rabbitmq-c's status text. */
static void describe_open_failure(const struct warren_conn *c, int rc,
                                  const struct amqp_connection_info *info,
                                  const struct warren_tls_conf *tls, warren_error *err)
{
    char why[700];
    const char *reason = openssl_reason();
    switch (rc) {
    case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
        describe_verify_failure(why, sizeof why, tls, info->host);
        break;
    case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
        snprintf(why, sizeof why,
                 "hostname verification failed: the broker's certificate does not name '%s' "
                 "(broker.tls.verify_hostname)",
                 info->host);
        break;
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
    case AMQP_STATUS_SSL_ERROR:
        snprintf(why, sizeof why, "TLS handshake failed: %s%s",
                 reason ? reason : amqp_error_string2(rc),
                 reason && strstr(reason, "wrong version number")
                     ? " (is this port a TLS listener?)" : "");
        break;
    default:
        snprintf(why, sizeof why, "%s", amqp_error_string2(rc));
    }
    int v6 = strchr(info->host, ':') != NULL;
    warren_error_set(err, WARREN_ECONNECT, "cannot connect to %s (%s%s%s:%d%s): %s", c->url,
                     v6 ? "[" : "", info->host, v6 ? "]" : "", info->port,
                     info->ssl ? ", TLS" : "", why);
    ERR_clear_error();
}

/* A TLS broker may refuse us only after the handshake (TLS 1.3 sends its
 * verdict on a client certificate with the first data), so login
 * failures get OpenSSL's reason too. */
static void describe_login_failure(const struct warren_conn *c, amqp_rpc_reply_t r, int ssl,
                                   const struct warren_tls_conf *tls, warren_error *err)
{
    char refused[300] = "refused by broker";
    const char *why = refused;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        why = amqp_error_string2(r.library_error);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
               r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *cl = r.reply.decoded;
        snprintf(refused, sizeof refused, "refused by broker: %u %.*s", cl->reply_code,
                 (int)cl->reply_text.len, (const char *)cl->reply_text.bytes);
    }
    const char *alert = ssl && tls_seen.alert[0] ? tls_seen.alert : NULL;
    /* The alert can be lost: the broker closes at once, and our unread
     * AMQP header makes its side send a reset. A TLS session that dies
     * before the broker's first frame is then most likely the same refusal. */
    int cut = ssl && r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION;
    char hint[600] = "";
    if ((alert || cut) && tls && tls->cert)
        snprintf(hint, sizeof hint, "; the broker %s the client certificate %s "
                                    "(broker.tls.cert)",
                 alert ? "refused" : "may have refused", tls->cert);
    else if (alert || cut)
        snprintf(hint, sizeof hint, "; the broker may require a client certificate "
                                    "(broker.tls.cert and broker.tls.key)");
    warren_error_set(err, WARREN_ECONNECT, "cannot log in to %s: %s%s%s%s%s", c->url, why,
                     alert ? " (TLS alert from the broker: " : "", alert ? alert : "",
                     alert ? ")" : "", hint);
    ERR_clear_error();
}

static amqp_table_t client_properties(amqp_table_entry_t *entries, amqp_table_entry_t *caps,
                                      const char *name)
{
    static const char *const cap_names[] = {"consumer_cancel_notify", "publisher_confirms",
                                            "basic.nack", "connection.blocked",
                                            "authentication_failure_close"};
    for (int i = 0; i < 5; i++) {
        caps[i].key = amqp_cstring_bytes(cap_names[i]);
        caps[i].value.kind = AMQP_FIELD_KIND_BOOLEAN;
        caps[i].value.value.boolean = 1;
    }
    entries[0].key = amqp_cstring_bytes("capabilities");
    entries[0].value.kind = AMQP_FIELD_KIND_TABLE;
    entries[0].value.value.table.num_entries = 5;
    entries[0].value.value.table.entries = caps;
    entries[1].key = amqp_cstring_bytes("product");
    entries[1].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[1].value.value.bytes = amqp_cstring_bytes("warren");
    entries[2].key = amqp_cstring_bytes("connection_name");
    entries[2].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[2].value.value.bytes = amqp_cstring_bytes(name ? name : "warren");
    amqp_table_t t = {3, entries};
    return t;
}

static warren_status open_one(struct warren_conn *c, const char *url,
                              const struct warren_conn_opts *opts, warren_error *err)
{
    char buf[1024];
    struct amqp_connection_info info;
    warren_status st = warren__url_parse(url, &info, buf, sizeof buf, err);
    if (st != WARREN_OK)
        return st;
    char *password = NULL;
    if (opts && opts->password_file) {
        password = warren__password_file_read(opts->password_file, err);
        if (!password)
            return WARREN_EIO;
        info.password = password;
    }
    const struct warren_tls_conf *tls = opts ? opts->tls : NULL;
    c->state = amqp_new_connection();
    c->tls = info.ssl;
    amqp_socket_t *sock = make_socket(c->state, info.ssl, info.host, tls, err);
    st = sock ? WARREN_OK : WARREN_ECONFIG;
    struct timeval tv = {CONNECT_TIMEOUT_S, 0};
    memset(&tls_seen, 0, sizeof tls_seen);
    int rc = st == WARREN_OK ? amqp_socket_open_noblock(sock, info.host, info.port, &tv)
                             : AMQP_STATUS_OK;
    if (rc != AMQP_STATUS_OK) {
        describe_open_failure(c, rc, &info, tls, err);
        st = WARREN_ECONNECT;
    }
    if (st == WARREN_OK) {
        amqp_set_handshake_timeout(c->state, &tv);
        amqp_table_entry_t entries[3], caps[5];
        amqp_table_t props = client_properties(entries, caps, opts ? opts->client_name : NULL);
        amqp_rpc_reply_t r = amqp_login_with_properties(
            c->state, info.vhost, 0, 131072, opts ? opts->heartbeat : 0, &props,
            AMQP_SASL_METHOD_PLAIN, info.user, info.password);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            describe_login_failure(c, r, info.ssl, tls, err);
            st = WARREN_ECONNECT;
        }
    }
    if (password) {
        OPENSSL_cleanse(password, strlen(password));
        free(password);
    }
    OPENSSL_cleanse(buf, sizeof buf); /* the URL's copy, password included */
    if (st != WARREN_OK) {
        amqp_destroy_connection(c->state);
        c->state = NULL;
    }
    return st;
}

static warren_status open_channel(struct warren_conn *c, warren_error *err)
{
    amqp_channel_open(c->state, CHANNEL);
    warren_status st = warren__conn_check_reply(c, "channel.open", err);
    if (st != WARREN_OK)
        return st;
    amqp_confirm_select(c->state, CHANNEL);
    return warren__conn_check_reply(c, "confirm.select", err);
}

warren_status warren__conn_open(struct warren_conn **out, char *const *urls, size_t n_urls,
                                const struct warren_conn_opts *opts, warren_error *err)
{
    *out = NULL;
    if (n_urls == 0)
        return warren_error_set(err, WARREN_EINVAL, "no broker URL");
    struct warren_conn *c = calloc(1, sizeof *c);
    if (!c)
        return warren_error_set(err, WARREN_ENOMEM, "out of memory");
    c->next_seq = 1;
    c->base = 1;
    warren_status st = WARREN_ECONNECT;
    for (size_t i = 0; i < n_urls; i++) {
        /* Only the last URL's failure is worth reporting: earlier ones are
         * logged, since the caller tries them in turn. */
        warren_error one;
        warren_error_clear(&one);
        warren__url_redact(urls[i], c->url, sizeof c->url);
        st = open_one(c, urls[i], opts, &one);
        if (st == WARREN_OK)
            break;
        if (st == WARREN_EINVAL || i + 1 == n_urls) {
            warren_error_set(err, one.code, "%s", one.text);
            break;
        }
        WARREN_LOG(WARREN_LOG_WARN, "broker.connect", "%s", one.text);
    }
    if (st == WARREN_OK)
        st = open_channel(c, err);
    if (st != WARREN_OK) {
        warren__conn_close(c);
        return st;
    }
    *out = c;
    return WARREN_OK;
}

void warren__conn_close(struct warren_conn *c)
{
    if (!c)
        return;
    if (c->state) {
        if (!c->broken) {
            amqp_channel_close(c->state, CHANNEL, AMQP_REPLY_SUCCESS);
            amqp_connection_close(c->state, AMQP_REPLY_SUCCESS);
        }
        amqp_destroy_connection(c->state);
    }
    warren__conn_drop_queued(c);
    free(c->queued);
    free(c->pubs);
    warren__strv_free(c->problems);
    free(c);
}

/* ---- declarations ------------------------------------------------------ */

void warren__conn_set_check_mode(struct warren_conn *c, int on)
{
    c->check_mode = on;
}

char *const *warren__conn_check_problems(const struct warren_conn *c, size_t *n)
{
    if (n)
        *n = c->n_problems;
    return c->problems;
}

static warren_status add_problem(struct warren_conn *c, const char *fmt, const char *a,
                                 const char *b)
{
    char **p = realloc(c->problems, (c->n_problems + 2) * sizeof *p);
    if (!p)
        return WARREN_ENOMEM;
    c->problems = p;
    char text[1024];
    snprintf(text, sizeof text, fmt, a, b);
    p[c->n_problems] = strdup(text);
    p[c->n_problems + 1] = NULL;
    if (p[c->n_problems])
        c->n_problems++;
    return WARREN_OK;
}

/* Check mode: a passive look-up, then (when it exists) the same
 * declaration, which the broker refuses if the arguments differ. */
static warren_status check_object(struct warren_conn *c, const char *kind, const char *name,
                                  int exists_status, warren_status (*declare)(struct warren_conn *,
                                                                               void *, warren_error *),
                                  void *ctx, warren_error *err)
{
    if (exists_status == WARREN_ENOTFOUND)
        return add_problem(c, "%s '%s' is missing", kind, name);
    if (exists_status != WARREN_OK)
        return warren_error_set(err, exists_status, "cannot look up %s '%s'", kind, name);
    warren_error why;
    warren_error_clear(&why);
    warren_status st = declare(c, ctx, &why);
    if (st == WARREN_EDRIFT)
        return add_problem(c, "%s: %s", name, why.text);
    if (st != WARREN_OK)
        return warren_error_set(err, st, "%s", why.text);
    return WARREN_OK;
}

struct declare_args {
    const char *name, *type;
    amqp_table_t args;
};

static warren_status do_exchange_declare(struct warren_conn *c, void *ctx, warren_error *err)
{
    struct declare_args *a = ctx;
    char what[300];
    snprintf(what, sizeof what, "declare exchange '%s'", a->name);
    amqp_exchange_declare(c->state, CHANNEL, bytes_of(a->name), bytes_of(a->type), 0, 1, 0, 0,
                          a->args);
    return warren__conn_check_reply(c, what, err);
}

static warren_status do_queue_declare(struct warren_conn *c, void *ctx, warren_error *err)
{
    struct declare_args *a = ctx;
    char what[300];
    snprintf(what, sizeof what, "declare queue '%s'", a->name);
    amqp_queue_declare(c->state, CHANNEL, bytes_of(a->name), 0, 1, 0, 0, a->args);
    return warren__conn_check_reply(c, what, err);
}

warren_status warren__conn_exchange_declare(struct warren_conn *c, const char *name,
                                            const char *type, amqp_table_t args,
                                            warren_error *err)
{
    struct declare_args a = {name, type, args};
    if (c->check_mode) {
        warren_error probe;
        warren_error_clear(&probe);
        return check_object(c, "exchange", name, warren__conn_exchange_exists(c, name, &probe),
                            do_exchange_declare, &a, err);
    }
    return do_exchange_declare(c, &a, err);
}

warren_status warren__conn_queue_declare(struct warren_conn *c, const char *name,
                                         amqp_table_t args, warren_error *err)
{
    struct declare_args a = {name, NULL, args};
    if (c->check_mode) {
        warren_error probe;
        warren_error_clear(&probe);
        return check_object(c, "queue", name,
                            warren__conn_queue_inspect(c, name, NULL, NULL, &probe),
                            do_queue_declare, &a, err);
    }
    return do_queue_declare(c, &a, err);
}

warren_status warren__conn_queue_inspect(struct warren_conn *c, const char *name,
                                         uint32_t *messages, uint32_t *consumers,
                                         warren_error *err)
{
    char what[300];
    snprintf(what, sizeof what, "inspect queue '%s'", name);
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c->state, CHANNEL, bytes_of(name), 1, 0, 0, 0, amqp_empty_table);
    warren_status st = warren__conn_check_reply(c, what, err);
    if (st == WARREN_OK && ok) {
        if (messages)
            *messages = ok->message_count;
        if (consumers)
            *consumers = ok->consumer_count;
    }
    return st;
}

warren_status warren__conn_exchange_exists(struct warren_conn *c, const char *name,
                                           warren_error *err)
{
    char what[300];
    snprintf(what, sizeof what, "inspect exchange '%s'", name);
    amqp_exchange_declare(c->state, CHANNEL, bytes_of(name), bytes_of("direct"), 1, 0, 0, 0,
                          amqp_empty_table);
    return warren__conn_check_reply(c, what, err);
}

warren_status warren__conn_exchange_bind(struct warren_conn *c, const char *dest,
                                         const char *source, const char *key,
                                         warren_error *err)
{
    if (c->check_mode)
        return WARREN_OK;
    char what[600];
    snprintf(what, sizeof what, "bind exchange '%s' to '%s' with '%s'", dest, source, key);
    amqp_exchange_bind(c->state, CHANNEL, bytes_of(dest), bytes_of(source), bytes_of(key),
                       amqp_empty_table);
    return warren__conn_check_reply(c, what, err);
}

warren_status warren__conn_queue_bind(struct warren_conn *c, const char *queue,
                                      const char *exchange, const char *key, warren_error *err)
{
    if (c->check_mode)
        return WARREN_OK;
    char what[600];
    snprintf(what, sizeof what, "bind queue '%s' to '%s' with '%s'", queue, exchange, key);
    amqp_queue_bind(c->state, CHANNEL, bytes_of(queue), bytes_of(exchange), bytes_of(key),
                    amqp_empty_table);
    return warren__conn_check_reply(c, what, err);
}

warren_status warren__conn_queue_purge(struct warren_conn *c, const char *queue,
                                       uint32_t *purged, warren_error *err)
{
    char what[300];
    snprintf(what, sizeof what, "purge queue '%s'", queue);
    amqp_queue_purge_ok_t *ok = amqp_queue_purge(c->state, CHANNEL, bytes_of(queue));
    warren_status st = warren__conn_check_reply(c, what, err);
    if (st == WARREN_OK && ok && purged)
        *purged = ok->message_count;
    return st;
}

warren_status warren__conn_qos(struct warren_conn *c, uint16_t prefetch, warren_error *err)
{
    amqp_basic_qos(c->state, CHANNEL, 0, prefetch, 0);
    return warren__conn_check_reply(c, "basic.qos", err);
}

warren_status warren__conn_consume(struct warren_conn *c, const char *queue, const char *tag,
                                   warren_error *err)
{
    char what[300];
    snprintf(what, sizeof what, "consume from '%s'", queue);
    amqp_basic_consume(c->state, CHANNEL, bytes_of(queue), bytes_of(tag), 0, 0, 0,
                       amqp_empty_table);
    return warren__conn_check_reply(c, what, err);
}

warren_status warren__conn_cancel(struct warren_conn *c, const char *tag, warren_error *err)
{
    amqp_basic_cancel(c->state, CHANNEL, bytes_of(tag));
    return warren__conn_check_reply(c, "basic.cancel", err);
}
