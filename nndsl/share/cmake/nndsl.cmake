# nndsl_add_model(<target> <model.nn> [NAME <name>] [PREFIX <prefix>] [OUTPUT_DIR <dir>])
#
# A static library <target> holding the C that `nndsl build` generates from
# <model.nn>, with the generated header's folder as a PUBLIC include directory,
# so `target_link_libraries(app PRIVATE <target>)` and `#include "<name>.h"`
# is all a program needs. The C is regenerated when the .nn, its weights or
# nndsl itself change: nndsl's depfile names them (CMake 3.20 or later).
#
#   NAME        the network's name in the .nn, which names the files <name>.c/.h
#               (default: the .nn file's name without its extension)
#   PREFIX      put before every C name and the file names (nndsl build --prefix):
#               two models with the same network name then link into one program
#   OUTPUT_DIR  where the C goes (default: <current binary dir>/nndsl/<target>)
#
# NNDSL_EXECUTABLE is the nndsl command (default: found on PATH).
include_guard(GLOBAL)
cmake_minimum_required(VERSION 3.20)

if(NOT NNDSL_EXECUTABLE)
    find_program(NNDSL_EXECUTABLE nndsl REQUIRED)
endif()

function(nndsl_add_model target model)
    cmake_parse_arguments(PARSE_ARGV 2 ARG "" "NAME;PREFIX;OUTPUT_DIR" "")
    if(ARG_UNPARSED_ARGUMENTS)
        message(FATAL_ERROR "nndsl_add_model(${target}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
    endif()
    get_filename_component(model "${model}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    if(NOT EXISTS "${model}")
        message(FATAL_ERROR "nndsl_add_model(${target}): ${model} does not exist")
    endif()
    if(NOT ARG_NAME)
        get_filename_component(ARG_NAME "${model}" NAME_WE)
    endif()
    if(NOT ARG_OUTPUT_DIR)
        set(ARG_OUTPUT_DIR "${CMAKE_CURRENT_BINARY_DIR}/nndsl/${target}")
    endif()
    get_filename_component(out "${ARG_OUTPUT_DIR}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
    set(prefix_option)
    if(ARG_PREFIX)
        set(prefix_option --prefix "${ARG_PREFIX}")
    endif()
    set(stem "${ARG_PREFIX}${ARG_NAME}")
    set(source "${out}/${stem}.c")
    set(header "${out}/${stem}.h")
    # nndsl leaves a file whose content would not change untouched; the touch tells
    # the build it is up to date, so it is not regenerated on every build.
    add_custom_command(
        OUTPUT "${source}" "${header}"
        COMMAND "${NNDSL_EXECUTABLE}" build "${model}" -o "${out}" -q ${prefix_option}
        COMMAND "${CMAKE_COMMAND}" -E touch "${source}" "${header}"
        DEPENDS "${model}"
        DEPFILE "${out}/${stem}.d"
        COMMENT "nndsl: generating ${stem}.c and ${stem}.h from ${model}"
        VERBATIM)
    add_library(${target} STATIC "${source}" "${header}")
    target_include_directories(${target} PUBLIC "${out}")
endfunction()
