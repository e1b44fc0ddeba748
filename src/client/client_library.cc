// The shared client library's own translation unit: everything it exports comes from
// rdb_client, linked whole (see CMakeLists.txt). It includes the headers the library
// installs, so a header that stops compiling breaks the library's build, not a user's.
#include "rdb/client.h"
#include "rdb/result.h"
#include "rdb/status.h"
