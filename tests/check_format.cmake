# Fails when a C++ source under agent/ or tests/ differs from what clang-format makes of it
# with the checked-in .clang-format (run: cmake -DCLANG_FORMAT=... -DROOT=... -P this file).
# Fix with: git ls-files '*.cpp' '*.h' | xargs clang-format -i
file(GLOB_RECURSE sources LIST_DIRECTORIES false
     "${ROOT}/agent/*.cpp" "${ROOT}/agent/*.h" "${ROOT}/tests/*.cpp" "${ROOT}/tests/*.h")
list(FILTER sources EXCLUDE REGEX "/node_modules/")
execute_process(COMMAND "${CLANG_FORMAT}" --dry-run --Werror ${sources}
                RESULT_VARIABLE rc ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  string(REGEX MATCHALL "[^\n]*: error: [^\n]*" errors "${out}")
  list(LENGTH errors count)
  list(SUBLIST errors 0 20 first)
  string(REPLACE ";" "\n" first "${first}")
  message(FATAL_ERROR "${count} place(s) differ from .clang-format; the first:\n${first}\n"
                      "Fix: git ls-files '*.cpp' '*.h' | xargs clang-format -i")
endif()
list(LENGTH sources n)
message(STATUS "${n} sources follow .clang-format")
