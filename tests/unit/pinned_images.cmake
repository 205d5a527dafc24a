# Which images are reported pinned (pure matching over image records).
berth_add_test(pinned_images_test SOURCES pinned_images_test.cc LIBS berth_image_service LABELS unit)
