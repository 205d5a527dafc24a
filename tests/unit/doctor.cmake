berth_add_test(doctor_test SOURCES doctor_test.cc LIBS berth_doctor LABELS unit)
