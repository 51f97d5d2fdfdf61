/* warren public API: symbol export control. The library is built with
 * hidden visibility; only what carries WARREN_EXPORT is exported. */
#ifndef WARREN_EXPORT_H
#define WARREN_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define WARREN_EXPORT __attribute__((visibility("default")))
#else
#define WARREN_EXPORT
#endif

#endif
