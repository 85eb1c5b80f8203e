# sandbox/: one suite per source file under test. The suites that run things (sandbox_run,
# sandbox_pod, sandbox_confine) use a busybox rootfs made at test time; sandbox_rootless runs
# them again as ordinary users (with and without subordinate ids).
foreach(name idmap privilege user exec rootfs mounts cgroup)
  rbx_unit_test(sandbox_${name} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sandbox_${name}.c
                LIBS rbx_sandbox rbx_common)
endforeach()
rbx_unit_test(sandbox_run SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sandbox_run.c
              LIBS rbx_sandbox rbx_common Threads::Threads)
rbx_unit_test(sandbox_pod SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sandbox_pod.c
              LIBS rbx_sandbox rbx_common)
# The probe runs inside the sandbox's rootfs, which has no libc: static, and never sanitized.
add_executable(rbx_probe ${CMAKE_CURRENT_LIST_DIR}/probe/rbx_probe.c)
target_compile_options(rbx_probe PRIVATE -fno-sanitize=all -U_FORTIFY_SOURCE)
target_link_options(rbx_probe PRIVATE -static -fno-sanitize=all)
rbx_unit_test(sandbox_confine SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sandbox_confine.c
              LIBS rbx_sandbox rbx_common PkgConfig::LIBCAP)
target_compile_definitions(test_sandbox_confine PRIVATE RBX_PROBE_PATH="$<TARGET_FILE:rbx_probe>")
add_dependencies(test_sandbox_confine rbx_probe)
add_test(NAME unit.sandbox_rootless
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/sandbox_rootless.sh $<TARGET_FILE:test_sandbox_run>
                 $<TARGET_FILE:test_sandbox_privilege> $<TARGET_FILE:test_sandbox_pod>
                 $<TARGET_FILE:test_sandbox_confine>)
set_tests_properties(unit.sandbox_rootless PROPERTIES SKIP_RETURN_CODE 77 LABELS unit TIMEOUT 300)
# oci.c with caps.c and seccomp.c: config.json both ways, names, rlimits, profile forms.
rbx_unit_test(sandbox_oci SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sandbox_oci.c
              LIBS rbx_sandbox rbx_common PkgConfig::SECCOMP)
