# sandbox/: one suite per source file under test. test_sandbox runs the whole sandbox on a
# busybox rootfs made at test time; sandbox_rootless runs that same suite as an unprivileged
# user (with and without subordinate ids).
rbx_unit_test(sandbox SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sandbox.c LIBS rbx_sandbox rbx_common Threads::Threads)
