# oneDNN for the CPU backend's float32 convolutions: Debian's libdnnl-dev (2.x). Its CMake config
# insists on OpenCL development files (Debian builds it with the OpenCL GPU runtime), so the header
# and library are found by hand. It is built with the OpenMP CPU runtime, whose thread count sgf sets
# per call (omp_set_num_threads), so libgomp is linked directly. sgf is not compiled with -fopenmp:
# Eigen must not parallelise its own products (sgf's thread pool does).
if(NOT TARGET sgf_onednn)
  find_path(SGF_ONEDNN_INCLUDE_DIR oneapi/dnnl/dnnl.hpp)
  find_library(SGF_ONEDNN_LIBRARY dnnl)
  find_library(SGF_GOMP_LIBRARY NAMES gomp libgomp.so.1)
  if(SGF_ONEDNN_INCLUDE_DIR AND SGF_ONEDNN_LIBRARY AND SGF_GOMP_LIBRARY)
    add_library(sgf_onednn INTERFACE IMPORTED)
    target_include_directories(sgf_onednn INTERFACE ${SGF_ONEDNN_INCLUDE_DIR})
    target_link_libraries(sgf_onednn INTERFACE ${SGF_ONEDNN_LIBRARY} ${SGF_GOMP_LIBRARY})
    target_compile_definitions(sgf_onednn INTERFACE SGF_HAVE_ONEDNN=1)
  endif()
endif()
