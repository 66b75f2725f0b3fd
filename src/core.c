/* core.c: luaopen_sigmamind_core, the hub: it only opens the parts (each concern has its own file and
   header) and lists the module's functions. */
#include <curl/curl.h>
#include "clock.h"
#include "client.h"
#include "crypto.h"
#include "encode.h"
#include "endpoints.h"
#include "error.h"
#include "journal.h"
#include "json.h"
#include "policy.h"
#include "request.h"

/* libcurl's global state is set up once per process. A static flag is the one piece of C state; it is
   written once, from luaopen, and libcurl >= 7.84 reports (CURL_VERSION_THREADSAFE) that curl_global_init is
   itself thread-safe, so a race between two states loading the module at once is harmless. We never call
   curl_global_cleanup: other states (or the host) may still use libcurl. */
static int curl_ready = 0;

int luaopen_sigmamind_core(lua_State *L);
__attribute__((visibility("default"))) int luaopen_sigmamind_core(lua_State *L) {
  static const luaL_Reg funcs[] = {
    { "new", l_core_new }, { "validate", l_core_validate }, { "error", l_core_error },
    { "is_error", l_core_is_error }, { "base64_encode", l_core_base64_encode },
    { "base64_decode", l_core_base64_decode }, { "hmac_sha256", l_core_hmac_sha256 },
    { "consteq", l_core_consteq }, { "json_encode", l_core_json_encode }, { "json_decode", l_core_json_decode },
    { "sleep", l_core_sleep }, { "now", l_core_now }, { "time", l_core_time },
    { "journal_append", l_core_journal_append }, { "journal_truncate", l_core_journal_truncate },
    { "journal_lock", l_core_journal_lock },
    /* for transports written in Lua (ngx.lua): the same request building and policy as the C loops */
    { "prepare", l_core_prepare }, { "classify", l_core_classify }, { "mask_path", l_core_mask_path },
    { NULL, NULL }
  };
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return luaL_error(L, "sigmamind.core: curl_global_init failed");
    curl_ready = 1;
  }
  sm_error_init(L);
  sm_client_init(L);
  luaL_newlib(L, funcs);
  sm_push_null(L); lua_setfield(L, -2, "null");
  sm_push_endpoints(L); lua_setfield(L, -2, "endpoints");
  lua_pushliteral(L, SM_VERSION); lua_setfield(L, -2, "_VERSION");
  return 1;
}
