berth_add_test(image_test SOURCES image_test.cc LIBS berth_image LABELS unit)
