/* warren: background jobs on RabbitMQ. The umbrella header.
 * Anything not declared under include/warren/ is internal and may change. */
#ifndef WARREN_WARREN_H
#define WARREN_WARREN_H

#include <warren/export.h>
#include <warren/error.h>
#include <warren/log.h>
#include <warren/job.h>
#include <warren/registry.h>
#include <warren/module.h>
#include <warren/producer.h>
#include <warren/schedule.h>

#define WARREN_VERSION_MAJOR 0
#define WARREN_VERSION_MINOR 1
#define WARREN_VERSION_PATCH 0
#define WARREN_VERSION_HEX \
    ((WARREN_VERSION_MAJOR << 16) | (WARREN_VERSION_MINOR << 8) | WARREN_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually loaded, as WARREN_VERSION_HEX. */
WARREN_EXPORT unsigned warren_version(void);
/* The same as "MAJOR.MINOR.PATCH". */
WARREN_EXPORT const char *warren_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
