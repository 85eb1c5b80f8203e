# Unit suites for builder/: one per source file under test.
rbx_unit_test(builder_dockerfile SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_builder_dockerfile.c LIBS rbx_builder)
rbx_unit_test(builder_expand SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_builder_expand.c LIBS rbx_builder)
rbx_unit_test(builder_ignore SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_builder_ignore.c LIBS rbx_builder)
# The build: the layered view and the copy rules (whole builds are integration tests).
rbx_unit_test(builder_view SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_builder_view.c LIBS rbx_builder)
rbx_unit_test(builder_copy SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_builder_copy.c LIBS rbx_builder)
