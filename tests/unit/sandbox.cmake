# sandbox/: one suite per source file under test. sandbox_run drives the whole sandbox on a
# busybox rootfs made at test time; sandbox_rootless runs that same suite again as an ordinary
# user (with and without subordinate ids).
foreach(name idmap privilege user exec rootfs mounts)
  rbx_unit_test(sandbox_${name} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sandbox_${name}.c
                LIBS rbx_sandbox rbx_common)
endforeach()
rbx_unit_test(sandbox_run SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sandbox_run.c
              LIBS rbx_sandbox rbx_common Threads::Threads)
add_test(NAME unit.sandbox_rootless
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/sandbox_rootless.sh $<TARGET_FILE:test_sandbox_run>
                 $<TARGET_FILE:test_sandbox_privilege>)
set_tests_properties(unit.sandbox_rootless PROPERTIES SKIP_RETURN_CODE 77 LABELS unit TIMEOUT 300)
