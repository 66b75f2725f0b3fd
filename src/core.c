/* core.c: luaopen_sigmamind_core and the module's small functions (time, sleep, JSON and crypto wrappers). */
#include <errno.h>
#include <math.h>
#include <time.h>
#include "sm.h"

double sm_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sm_sleep(double seconds) {
  struct timespec ts;
  if (!(seconds > 0)) return;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec > 999999999L) ts.tv_nsec = 999999999L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int l_now(lua_State *L) { lua_pushnumber(L, sm_now()); return 1; }

static int l_time(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
  return 1;
}

static int l_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s == s && s >= 0 && s < 1e9, 1, "expected a number of seconds >= 0");
  sm_sleep(s);
  return 0;
}

static int l_json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  if (sm_json_encode(L, 1)) return 1;
  return 2;
}

static int l_json_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  if (sm_json_decode(L, s, len)) return 1;
  return 2;
}

/* libcurl's global state is set up once per process. A static flag is the one piece of C state; it is
   written once, from luaopen, and libcurl >= 7.84 reports (CURL_VERSION_THREADSAFE) that curl_global_init is
   itself thread-safe, so a race between two states loading the module at once is harmless. We never call
   curl_global_cleanup: other states (or the host) may still use libcurl. */
static int curl_ready = 0;

int luaopen_sigmamind_core(lua_State *L);
__attribute__((visibility("default"))) int luaopen_sigmamind_core(lua_State *L) {
  static const luaL_Reg funcs[] = {
    { "new", sm_client_new }, { "validate", sm_validate_l }, { "error", sm_error_new },
    { "is_error", sm_error_is }, { "base64_encode", sm_base64_encode_l }, { "base64_decode", sm_base64_decode_l },
    { "hmac_sha256", sm_hmac_sha256_l }, { "consteq", sm_consteq_l }, { "json_encode", l_json_encode },
    { "json_decode", l_json_decode }, { "sleep", l_sleep }, { "now", l_now }, { "time", l_time },
    { "journal_append", sm_journal_append_l }, { "journal_truncate", sm_journal_truncate_l },
    { "journal_lock", sm_journal_lock_l },
    { NULL, NULL }
  };
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return luaL_error(L, "sigmamind.core: curl_global_init failed");
    curl_ready = 1;
  }
  sm_error_init(L);
  sm_client_init(L);
  luaL_newlib(L, funcs);
  sm_prepare_register(L);   /* prepare, classify, mask_path: for Lua transports (ngx.lua) */
  sm_push_null(L); lua_setfield(L, -2, "null");
  sm_push_endpoints(L); lua_setfield(L, -2, "endpoints");
  lua_pushliteral(L, SM_VERSION); lua_setfield(L, -2, "_VERSION");
  return 1;
}
