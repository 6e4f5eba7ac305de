# nndsl's CMake package: find_package(nndsl CONFIG) with the folder `nndsl --cmake-dir` prints, e.g.
#   execute_process(COMMAND nndsl --cmake-dir OUTPUT_VARIABLE NNDSL_CMAKE_DIR OUTPUT_STRIP_TRAILING_WHITESPACE)
#   find_package(nndsl REQUIRED CONFIG PATHS "${NNDSL_CMAKE_DIR}" NO_DEFAULT_PATH)
# or include("${NNDSL_CMAKE_DIR}/nndsl.cmake") directly. Either gives nndsl_add_model().
include("${CMAKE_CURRENT_LIST_DIR}/nndsl.cmake")
