# cuDNN 9 has no CMake config on these machines: find the header and library by hand.
if(NOT TARGET sgf_cudnn)
  find_path(SGF_CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include /usr/include
            PATH_SUFFIXES x86_64-linux-gnu)
  find_library(SGF_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu)
  add_library(sgf_cudnn INTERFACE IMPORTED)
  if(SGF_CUDNN_INCLUDE_DIR AND SGF_CUDNN_LIBRARY)
    target_include_directories(sgf_cudnn INTERFACE ${SGF_CUDNN_INCLUDE_DIR})
    target_link_libraries(sgf_cudnn INTERFACE ${SGF_CUDNN_LIBRARY})
    target_compile_definitions(sgf_cudnn INTERFACE SGF_HAVE_CUDNN=1)
  else()
    message(WARNING "sgf: cuDNN not found; the CUDA backend's convolutions need it")
  endif()
endif()
