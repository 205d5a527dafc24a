berth_add_test(store_test SOURCES store_test.cc LIBS berth_store LABELS unit)
berth_add_test(content_test SOURCES content_test.cc LIBS berth_content LABELS unit)
