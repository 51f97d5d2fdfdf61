/* The library's version, as loaded at run time. */
#include <warren/warren.h>

#define WARREN__STR2(x) #x
#define WARREN__STR(x) WARREN__STR2(x)

unsigned warren_version(void)
{
    return WARREN_VERSION_HEX;
}

const char *warren_version_string(void)
{
    return WARREN__STR(WARREN_VERSION_MAJOR) "." WARREN__STR(WARREN_VERSION_MINOR) "." WARREN__STR(
        WARREN_VERSION_PATCH);
}
