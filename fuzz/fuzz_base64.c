/* fuzz_base64.c: base64 (crypto.c): sm_base64_valid and core.base64_decode agree; a valid input decodes and
   re-encodes to itself (the canonical form is enforced); any bytes encode and decode back. */
#include "fuzz_common.h"

static int run(lua_State *L) {
  const char *s = (const char *)lua_touserdata(L, 1);
  size_t len = (size_t)lua_tointeger(L, 2), dlen, elen;
  int valid = sm_base64_valid(s, len);
  const char *d, *e;
  lua_settop(L, 0);

  lua_pushcfunction(L, l_core_base64_decode);
  lua_pushlstring(L, s, len);
  lua_call(L, 1, 2);
  if (valid != !lua_isnil(L, 1)) abort();
  if (valid) {
    d = lua_tolstring(L, 1, &dlen);
    if (dlen != len / 4 * 3 - (len && s[len - 1] == '=') - (len > 1 && s[len - 2] == '=')) abort();
    lua_pushcfunction(L, l_core_base64_encode);
    lua_pushlstring(L, d, dlen);
    lua_call(L, 1, 1);
    e = lua_tolstring(L, -1, &elen);
    if (elen != len || memcmp(e, s, len) != 0) abort();
  }
  lua_settop(L, 0);

  lua_pushcfunction(L, l_core_base64_encode);
  lua_pushlstring(L, s, len);
  lua_call(L, 1, 1);
  e = lua_tolstring(L, 1, &elen);
  if (elen != (len + 2) / 3 * 4 || !sm_base64_valid(e, elen)) abort();
  lua_pushcfunction(L, l_core_base64_decode);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  d = lua_tolstring(L, -1, &dlen);
  if (!d || dlen != len || memcmp(d, s, len) != 0) abort();
  return 0;
}

FUZZ_COPY_HARNESS(run)
