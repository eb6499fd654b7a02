# Dependencies of sgf, all from Debian packages (see README). Used both by the build and by the
# installed package config, so a consumer's find_package(sgf) finds the same things.
include(CMakeFindDependencyMacro)
find_dependency(Threads)
find_dependency(Eigen3 3.4 NO_MODULE)
find_dependency(fmt)
find_dependency(nlohmann_json)
find_dependency(ZLIB)
find_dependency(SQLite3)

# stb: Debian's libstb-dev ships the headers under stb/ and the compiled implementation as libstb.
if(NOT TARGET sgf_stb_imported)
  find_path(SGF_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb REQUIRED)
  find_library(SGF_STB_LIBRARY stb REQUIRED)
  add_library(sgf_stb_imported UNKNOWN IMPORTED)
  set_target_properties(sgf_stb_imported PROPERTIES IMPORTED_LOCATION "${SGF_STB_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${SGF_STB_INCLUDE_DIR}")
endif()
