# The command-line tool's sources, for the SDK build (examples/) and the wheel (bindings/python/).
# It links liblimn.so like any application and compiles the library's torch-free atomic-write
# helper (src/file_io.cpp), so that the tool and the library write files one way.
set(LIMN_CLI_SOURCES
  "${CMAKE_CURRENT_LIST_DIR}/main.cpp"
  "${CMAKE_CURRENT_LIST_DIR}/args.cpp"
  "${CMAKE_CURRENT_LIST_DIR}/plan.cpp"
  "${CMAKE_CURRENT_LIST_DIR}/model_args.cpp"
  "${CMAKE_CURRENT_LIST_DIR}/output.cpp"
  "${CMAKE_CURRENT_LIST_DIR}/images.cpp"
  "${CMAKE_CURRENT_LIST_DIR}/detect_faces.cpp"
  "${CMAKE_CURRENT_LIST_DIR}/info.cpp"
  "${CMAKE_CURRENT_LIST_DIR}/devices.cpp"
  "${CMAKE_CURRENT_LIST_DIR}/models.cpp"
  "${CMAKE_CURRENT_LIST_DIR}/landmarks.cpp"
  "${CMAKE_CURRENT_LIST_DIR}/../../src/file_io.cpp")
set(LIMN_CLI_INCLUDES "${CMAKE_CURRENT_LIST_DIR}/../../src")
