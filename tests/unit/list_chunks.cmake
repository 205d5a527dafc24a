# How the Stream* list RPCs cut large lists into messages (pure).
berth_add_test(list_chunks_test SOURCES list_chunks_test.cc LIBS berth_server LABELS unit)
