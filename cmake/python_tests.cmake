# cltoken_add_python_tests(PREFIX LABELS DIR): one CTest test PREFIX.<name> per
# DIR/test_<name>.py, run by Debian's python3 (CLTOKEN_PYTHON) with the environment the
# shared harness (tests/integration/cltoken_harness.py) reads: the binaries under test and
# the source and build trees. A line "# ctest-timeout: N" near the top of a file sets its
# timeout in seconds (default 300).
function(cltoken_add_python_tests prefix labels dir)
  set(environment
    CL_TOKEND=$<TARGET_FILE:cl-tokend>
    CL_TOKENCTL=$<TARGET_FILE:cl-tokenctl>
    CLTOKEN_SOURCE_DIR=${PROJECT_SOURCE_DIR}
    CLTOKEN_BUILD_DIR=${PROJECT_BINARY_DIR}
    PYTHONDONTWRITEBYTECODE=1)
  file(GLOB scripts CONFIGURE_DEPENDS ${dir}/test_*.py)
  foreach(script ${scripts})
    get_filename_component(name ${script} NAME_WE)
    string(REGEX REPLACE "^test_" "" name ${name})
    file(STRINGS ${script} timeout_line REGEX "^# ctest-timeout: [0-9]+" LIMIT_COUNT 1)
    set(timeout 300)
    if(timeout_line)
      string(REGEX REPLACE "^# ctest-timeout: ([0-9]+).*" "\\1" timeout "${timeout_line}")
    endif()
    add_test(NAME ${prefix}.${name} COMMAND ${CLTOKEN_PYTHON} ${script})
    set_tests_properties(${prefix}.${name} PROPERTIES ENVIRONMENT "${environment}" LABELS "${labels}" TIMEOUT ${timeout})
  endforeach()
endfunction()
