/* warren public API: the handler module descriptor.
 *
 * A module is a shared object that exports exactly one symbol,
 * `warren_module`, of type `const struct warren_module`:
 *
 *     const struct warren_module warren_module = {
 *         WARREN_MODULE_V1, .name = "diag", .init = diag_init, .fini = diag_fini,
 *     };
 *
 * The loader checks abi_version before reading any other field. */
#ifndef WARREN_MODULE_H
#define WARREN_MODULE_H

#include <stdint.h>
#include <jansson.h>
#include <warren/error.h>
#include <warren/export.h>
#include <warren/registry.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WARREN_MODULE_ABI_VERSION 1

struct warren_module {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name;
    /* Registers the module's workers. `config` is the module's `config`
     * group from the host configuration as a JSON object (borrowed, valid
     * only during the call; never NULL). Return WARREN_OK, or a status with
     * the reason in err. */
    warren_status (*init)(warren_registry *reg, const json_t *config, warren_error *err);
    /* Frees what init allocated. May be NULL. */
    void (*fini)(void);
    void *reserved[4];
};

#define WARREN_MODULE_V1 .abi_version = WARREN_MODULE_ABI_VERSION, \
                         .struct_size = sizeof(struct warren_module)

#define WARREN_MODULE_SYMBOL "warren_module"

/* Put before the descriptor so it is exported even under
 * -fvisibility=hidden. */
#define WARREN_MODULE_EXPORT __attribute__((visibility("default")))

#ifdef __cplusplus
}
#endif
#endif
