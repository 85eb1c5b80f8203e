# Unit suites for recipes/.
rbx_unit_test(recipes_run SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_recipes_run.c LIBS rbx_recipes)
rbx_unit_test(recipes_envfile SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_recipes_envfile.c LIBS rbx_recipes)
rbx_unit_test(recipes_report SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_recipes_report.c LIBS rbx_recipes)
rbx_unit_test(recipes_recipe SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_recipes_recipe.c
              ${CMAKE_CURRENT_LIST_DIR}/schema_check.c LIBS rbx_recipes)
rbx_unit_test(recipes_diagnose SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_recipes_diagnose.c LIBS rbx_recipes)
rbx_unit_test(recipes_probe SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_recipes_probe.c LIBS rbx_recipes)
rbx_unit_test(recipes_expect SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_recipes_expect.c LIBS rbx_recipes)
# doctor: one suite per source file; doctor_testlib.h builds trees and ELF files at test time.
foreach(name elf shell exec fs node env)
  rbx_unit_test(doctor_${name} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_doctor_${name}.c LIBS rbx_recipes)
endforeach()
rbx_unit_test(doctor SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_doctor.c LIBS rbx_recipes)
