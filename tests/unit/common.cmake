# common/: one suite per source file under test.
rbx_unit_test(common_fs SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_common_fs.c LIBS rbx_common)
