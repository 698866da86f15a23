# find_package(yaml-cpp) for the arm64 cross build when libyaml-cpp-dev:arm64 is not
# installed (see deploy/toolchain-arm64.cmake): the imported target `yaml-cpp`, as Debian's
# own config names it, from the :arm64 runtime library and the shared headers.
if(NOT TARGET yaml-cpp)
  find_path(YAML_CPP_CROSS_INCLUDE_DIR yaml-cpp/yaml.h)
  find_library(YAML_CPP_CROSS_LIBRARY NAMES yaml-cpp libyaml-cpp.so.0.7)
  if(NOT YAML_CPP_CROSS_INCLUDE_DIR OR NOT YAML_CPP_CROSS_LIBRARY)
    set(yaml-cpp_FOUND FALSE)
    set(yaml-cpp_NOT_FOUND_MESSAGE
        "needs libyaml-cpp-dev (headers) and libyaml-cpp0.7:arm64: deploy/install-deps.sh --cross-arm64")
    return()
  endif()
  add_library(yaml-cpp SHARED IMPORTED)
  set_target_properties(yaml-cpp PROPERTIES
    IMPORTED_LOCATION "${YAML_CPP_CROSS_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${YAML_CPP_CROSS_INCLUDE_DIR}")
endif()
