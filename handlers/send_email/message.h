/* send_email's message text and addresses (RFC 5322). */
#ifndef SEND_EMAIL_MESSAGE_H
#define SEND_EMAIL_MESSAGE_H

#include <stddef.h>

#define ADDR_MAX 254 /* bytes in one address (RFC 5321's path limit) */

/* What one mail is made of. All borrowed; from_addr is the bare address
 * inside `from`, and `id` the job id, which becomes the Message-ID. */
struct message {
    const char *id, *from, *from_addr, *to, *subject, *body;
};

/* The whole message, headers and body, with CRLF line ends and a
 * non-ASCII Subject RFC 2047-encoded. New string; NULL when out of memory. */
char *message_build(const struct message *m);

/* Copies the address of one mailbox ("Name <a@b>" or "a@b", len bytes)
 * into out (ADDR_MAX + 1 bytes). 0, or -1 when it is no address. */
int message_address(const char *mailbox, size_t len, char *out);

/* Splits a To field at commas outside quotes and angle brackets into at
 * most `max` bare addresses. Returns their count, or -1 with the reason
 * (a bad mailbox, too many, none) in why. */
int message_recipients(const char *to, char (*out)[ADDR_MAX + 1], int max, char *why,
                       size_t why_size);

#endif
