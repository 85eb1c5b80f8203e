# layers/: one suite per source file under test (parsers, the unpacker, the store, the archives).
add_library(rbx_layers_testlib STATIC ${CMAKE_CURRENT_LIST_DIR}/layers_testlib.c)
target_link_libraries(rbx_layers_testlib PUBLIC rbx_layers PkgConfig::ARCHIVE PkgConfig::ZLIB
                      PkgConfig::ZSTD)

foreach(t ref manifest oci unpack store archive userns flat records)
  rbx_unit_test(layers_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_layers_${t}.c
                LIBS rbx_layers_testlib rbx_layers Threads::Threads)
endforeach()

# The layer corpus (tests/corpus/make_corpus.c): hostile and legitimate images written at test
# time for the integration tests, the umoci differential and the fuzzer's seeds.
add_executable(rbx_make_corpus ${CMAKE_SOURCE_DIR}/tests/corpus/make_corpus.c)
target_include_directories(rbx_make_corpus PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(rbx_make_corpus PRIVATE rbx_layers_testlib rbx_layers PkgConfig::ARCHIVE
                      PkgConfig::ZLIB)

# The registry client: credentials and challenges; retries, redirects, resumption and pulls
# against a scripted HTTP server on loopback (testsrv.c).
rbx_unit_test(layers_auth SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_layers_auth.c
              LIBS rbx_layers_testlib rbx_layers Threads::Threads)
foreach(t registry pull)
  rbx_unit_test(layers_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_layers_${t}.c
                ${CMAKE_CURRENT_LIST_DIR}/testsrv.c LIBS rbx_layers_testlib rbx_layers Threads::Threads)
endforeach()

# The layer and image writers (builder output).
foreach(t writer layout diff)
  rbx_unit_test(layers_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_layers_${t}.c
                LIBS rbx_layers_testlib rbx_layers PkgConfig::ARCHIVE Threads::Threads)
endforeach()
