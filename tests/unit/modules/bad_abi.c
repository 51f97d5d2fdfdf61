/* A module built for another ABI version: the loader must refuse it
 * before reading anything but abi_version. */
#include <warren/module.h>

static warren_status bad_abi_init(warren_registry *reg, const json_t *config, warren_error *err)
{
    (void)reg;
    (void)config;
    (void)err;
    return WARREN_OK;
}

WARREN_MODULE_EXPORT const struct warren_module warren_module = {
    .abi_version = 999,
    .struct_size = sizeof(struct warren_module),
    .name = "bad_abi",
    .init = bad_abi_init,
};
