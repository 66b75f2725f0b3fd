/* fuzz_json.c: JSON response handling in the core (json.c): sm_json_decode of any bytes (cjson, then the
   integer fixup), then checks that no integral number within +-2^53 is left a float, and re-encodes. */
#include <math.h>
#include "fuzz_common.h"

static void check(lua_State *L, int idx, int depth) {
  if (lua_type(L, idx) == LUA_TNUMBER && !lua_isinteger(L, idx)) {
    double d = lua_tonumber(L, idx);
    if (d == floor(d) && fabs(d) <= 9007199254740992.0) abort();
  }
  if (lua_type(L, idx) != LUA_TTABLE || depth > 1000) return;
  luaL_checkstack(L, 4, "deep");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    check(L, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
}

static int run(lua_State *L) {
  const char *s = (const char *)lua_touserdata(L, 1);
  size_t len = (size_t)lua_tointeger(L, 2);
  int top = lua_gettop(L);
  if (sm_json_decode(L, s, len)) {
    if (lua_gettop(L) != top + 1) abort();
    check(L, lua_gettop(L), 0);
    if (sm_json_encode(L, -1)) lua_pop(L, 1);      /* string */
    else lua_pop(L, 2);                            /* nil, msg */
  } else {
    if (lua_gettop(L) != top + 2 || !lua_isnil(L, -2)) abort();
  }
  return 0;
}

FUZZ_COPY_HARNESS(run)
