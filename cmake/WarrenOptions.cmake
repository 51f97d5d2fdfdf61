# Build options and the dependencies every target shares.
include(GNUInstallDirs)

option(WARREN_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(WARREN_BUILD_TESTS "Build the test suites" ON)
option(WARREN_FUZZ "Build libFuzzer targets (needs clang)" OFF)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
endif()

set(CMAKE_C_STANDARD 11)
set(CMAKE_C_STANDARD_REQUIRED ON)
set(CMAKE_C_EXTENSIONS OFF)
add_compile_options(-Wall -Wextra -Wno-missing-field-initializers)
add_compile_definitions(_GNU_SOURCE)

if(WARREN_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(RABBITMQ REQUIRED IMPORTED_TARGET librabbitmq)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(LIBCONFIG REQUIRED IMPORTED_TARGET libconfig)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl)
# warrend's /metrics and /healthz; the notify module's webhooks.
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
# The job history (src/lib/history_sqlite.c) for warren web/job/jobs/report.
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)

# Where modules are found: the build tree's folder for an uninstalled
# build, and <libdir>/warren for an installed one.
set(WARREN_BUILD_MODULE_DIR ${CMAKE_BINARY_DIR}/modules)
set(WARREN_INSTALL_MODULE_DIR ${CMAKE_INSTALL_FULL_LIBDIR}/warren)
