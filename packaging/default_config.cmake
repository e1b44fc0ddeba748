# Writes a daemon's packaged default config: what `BIN --print-default-config` prints, with
# the data dir under /var/lib/rdb (the systemd units' StateDirectory) and, for a store, PD at
# its default local address. Run at build time: cmake -DBIN=... -DOUT=... -DDATA_DIR=... -P
execute_process(COMMAND ${BIN} --print-default-config OUTPUT_VARIABLE text RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BIN} --print-default-config failed (${rc})")
endif()
if(DATA_DIR)
  string(REGEX REPLACE "\ndata-dir = \"[^\"]*\"" "\ndata-dir = \"${DATA_DIR}\"" text "${text}")
endif()
if(PD)
  string(REGEX REPLACE "\n# pd = \"\"  \\(no default\\)" "\npd = \"${PD}\"" text "${text}")
endif()
file(WRITE ${OUT} "${text}")
