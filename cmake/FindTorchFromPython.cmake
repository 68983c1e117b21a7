# Finds LibTorch from the pip `torch` wheel: asks the Python interpreter for
# torch.utils.cmake_prefix_path unless Torch_DIR / CMAKE_PREFIX_PATH already lead to it.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
if(NOT Torch_DIR)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c "import torch; print(torch.utils.cmake_prefix_path)"
    OUTPUT_VARIABLE _limn_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _limn_torch_rc ERROR_QUIET)
  if(_limn_torch_rc EQUAL 0 AND _limn_torch_prefix)
    list(APPEND CMAKE_PREFIX_PATH "${_limn_torch_prefix}")
  elseif(DEFINED SKBUILD)
    message(FATAL_ERROR "limn: ${Python3_EXECUTABLE} cannot import torch. The Python package links the "
      "LibTorch of the installed torch wheel: install torch==2.11.0 (./setup.sh does), then build with "
      "pip install --no-build-isolation .  (pip's default build isolation hides the installed torch)")
  endif()
endif()
find_package(Torch REQUIRED)
get_filename_component(LIMN_TORCH_LIB_DIR "${TORCH_LIBRARY}" DIRECTORY)
# The pip wheel's CUDA build brings torch_cuda; a CPU-only LibTorch builds limn without CUDA.
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(LIMN_WITH_CUDA 1)
else()
  set(LIMN_WITH_CUDA 0)
endif()
message(STATUS "limn: LibTorch ${Torch_VERSION} from ${LIMN_TORCH_LIB_DIR}, CUDA: ${LIMN_WITH_CUDA}")
# The CUDA runtime of the torch wheel (nvidia/cu13/lib), so liblimn.so finds the same libcudart
# that LibTorch uses, on machines with or without a system CUDA Toolkit.
set(LIMN_RUNTIME_RPATH "${LIMN_TORCH_LIB_DIR}")
file(GLOB _limn_nvidia_libs LIST_DIRECTORIES true "${LIMN_TORCH_LIB_DIR}/../../nvidia/cu*/lib")
foreach(_dir IN LISTS _limn_nvidia_libs)
  get_filename_component(_dir "${_dir}" REALPATH)
  list(APPEND LIMN_RUNTIME_RPATH "${_dir}")
endforeach()
