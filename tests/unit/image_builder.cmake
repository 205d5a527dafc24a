berth_add_test(image_builder_test SOURCES image_builder_test.cc LIBS berth_test_support LABELS unit)
target_include_directories(image_builder_test PRIVATE ${CMAKE_SOURCE_DIR}/tests/support)
