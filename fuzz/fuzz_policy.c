/* fuzz_policy.c: the numbers of the attempt policy: core.classify (policy.c) with any status, attempt,
   elapsed time and options, and the error's __tostring (error.c) with any status and attempt count. Each
   number is 8 input bytes taken as a double, so NaN, infinities and 1e300 come up: UBSan must stay silent (no
   float-to-integer cast out of range). classify either raises an argument error or returns value | nil, err
   [, delay >= 0]; __tostring always gives a string. */
#include "fuzz_common.h"

static double get_double(fuzz_in *in) {
  unsigned char b[8];
  double d;
  unsigned i;
  for (i = 0; i < 8; i++) b[i] = (unsigned char)fuzz_byte(in);
  memcpy(&d, b, sizeof d);
  return d;
}

/* a number as the input says: absent, an integer (the Lua subtype) or a double */
static void push_number(lua_State *L, fuzz_in *in) {
  unsigned how = fuzz_byte(in) % 4, i;
  lua_Integer v = 0;
  if (how == 0) { lua_pushnil(L); return; }
  if (how == 1) {
    for (i = 0; i < 4; i++) v = v * 256 + (lua_Integer)fuzz_byte(in);
    lua_pushinteger(L, v - 0x80000000);
    return;
  }
  lua_pushnumber(L, get_double(in));
}

static int is_error(lua_State *L, int idx) {
  int is = 0;
  if (lua_type(L, idx) == LUA_TTABLE && lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, SM_ERROR_MT);
    is = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return is;
}

static int run(lua_State *L) {
  static const char *const kinds[] = { "server", "rejected", "network", "timeout", "invalid" };
  static const char *const fails[] = { "connect", "timeout", "network", "fatal", "too_large" };
  fuzz_in *in = (fuzz_in *)lua_touserdata(L, 1);
  unsigned mode = fuzz_byte(in);
  size_t len;
  const char *s;
  int n;
  lua_settop(L, 0);

  /* core.error{ kind, status, attempts, message }: __tostring with any numbers */
  lua_getglobal(L, "core");
  lua_getfield(L, -1, "error");
  lua_createtable(L, 0, 4);
  lua_pushstring(L, kinds[mode % 5]); lua_setfield(L, -2, "kind");
  push_number(L, in); lua_setfield(L, -2, "status");
  push_number(L, in); lua_setfield(L, -2, "attempts");
  lua_pushliteral(L, "m"); lua_setfield(L, -2, "message");
  lua_call(L, 1, 1);
  luaL_tolstring(L, -1, NULL);
  if (strncmp(lua_tostring(L, -1), "sigmamind: ", 11) != 0) abort();
  lua_settop(L, 0);

  /* core.classify{ method, path, status, headers, body, attempt, elapsed, fail, sent, max_retries, deadline,
                    max_response_bytes } */
  lua_getglobal(L, "core");
  lua_getfield(L, -1, "classify");
  lua_remove(L, -2);
  lua_createtable(L, 0, 12);
  lua_pushstring(L, (mode & 8) ? "POST" : "GET"); lua_setfield(L, -2, "method");
  lua_pushliteral(L, "/v1/calls"); lua_setfield(L, -2, "path");
  push_number(L, in); lua_setfield(L, -2, "status");
  lua_createtable(L, 0, 1);
  s = fuzz_bytes(in, &len);
  lua_pushlstring(L, s, len);
  lua_setfield(L, -2, "retry-after");
  lua_setfield(L, -2, "headers");
  s = fuzz_bytes(in, &len);
  lua_pushlstring(L, s, len); lua_setfield(L, -2, "body");
  push_number(L, in); lua_setfield(L, -2, "attempt");
  lua_pushnumber(L, get_double(in)); lua_setfield(L, -2, "elapsed");
  if (mode & 16) { lua_pushstring(L, fails[(mode >> 5) % 5]); lua_setfield(L, -2, "fail"); }
  lua_pushboolean(L, mode & 4); lua_setfield(L, -2, "sent");
  push_number(L, in); lua_setfield(L, -2, "max_retries");
  push_number(L, in); lua_setfield(L, -2, "deadline");
  push_number(L, in); lua_setfield(L, -2, "max_response_bytes");
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
    /* only the caller's mistakes raise, as argument errors */
    if (lua_type(L, -1) != LUA_TSTRING || strstr(lua_tostring(L, -1), "bad argument") == NULL) abort();
    return 0;
  }
  n = lua_gettop(L);
  if (n == 1) return 0;                                         /* a value */
  if (n > 3 || !lua_isnil(L, 1) || !is_error(L, 2)) abort();
  if (n == 3 && !(lua_tonumber(L, 3) >= 0)) abort();
  luaL_tolstring(L, 2, NULL);
  return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  fuzz_L = fuzz_state();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_read(run, data, size);
  fuzz_end(fuzz_L);
  return 0;
}
