berth_add_test(sandbox_plan_test SOURCES sandbox_plan_test.cc LIBS berth_sandbox LABELS unit)
