# Helper functions: warren_module() builds a handler module as a shared
# object in the build tree's module folder; warren_test() registers a test
# with labels and a timeout.

function(warren_module name)
  cmake_parse_arguments(M "" "" "SOURCES;LIBS" ${ARGN})
  add_library(${name}_module MODULE ${M_SOURCES})
  set_target_properties(${name}_module PROPERTIES
    OUTPUT_NAME ${name} PREFIX ""
    LIBRARY_OUTPUT_DIRECTORY ${WARREN_BUILD_MODULE_DIR}
    C_VISIBILITY_PRESET hidden)
  target_include_directories(${name}_module PRIVATE ${PROJECT_SOURCE_DIR}/include)
  # Symbols of the warren API are resolved from the host that loads the
  # module (warrend and warren export them), so the module links only what
  # it uses itself.
  target_link_libraries(${name}_module PRIVATE PkgConfig::JANSSON ${M_LIBS})
  install(TARGETS ${name}_module LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/warren)
endfunction()

function(warren_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;COMMAND" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(T_SOURCES)
    add_executable(${name} ${T_SOURCES})
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src/lib
                               ${PROJECT_SOURCE_DIR}/tests/support)
    target_link_libraries(${name} PRIVATE warren_static PkgConfig::CMOCKA ${T_LIBS})
    set_target_properties(${name} PROPERTIES ENABLE_EXPORTS ON)
    add_test(NAME ${name} COMMAND ${name})
  else()
    add_test(NAME ${name} COMMAND ${T_COMMAND})
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
    ENVIRONMENT "WARREN_MODULE_DIR=${WARREN_BUILD_MODULE_DIR};WARREN_SOURCE_DIR=${PROJECT_SOURCE_DIR};WARREN_BUILD_DIR=${PROJECT_BINARY_DIR}")
endfunction()
