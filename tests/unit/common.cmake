# Unit suites for common/: one per source file under test.
rbx_unit_test(common_fs SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_common_fs.c LIBS rbx_common)
rbx_unit_test(common_json SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_common_json.c LIBS rbx_common)
rbx_unit_test(common_tail SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_common_tail.c LIBS rbx_common)
rbx_unit_test(common_error SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_common_error.c LIBS rbx_common)
rbx_unit_test(common_util SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_common_util.c LIBS rbx_common)
rbx_unit_test(common_sha256 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_common_sha256.c LIBS rbx_common)
rbx_unit_test(common_progress SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_common_progress.c LIBS rbx_common)
rbx_unit_test(common_mkdir SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_common_mkdir.c LIBS rbx_common)
