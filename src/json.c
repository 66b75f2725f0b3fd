/* json.c: JSON through a private lua-cjson instance (cjson.safe.new(): our settings never touch anyone else's),
   with integral floats turned back into integers after decoding (cjson 2.1.0 decodes every number as a float). */
#include <math.h>
#include "sm.h"

/* registry keys: the addresses of these constants (no mutable C state) */
static const char encode_key = 'e';
static const char decode_key = 'd';

#define MAX_SAFE 9007199254740992.0   /* 2^53 */

void sm_json_init(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson.safe");
  lua_call(L, 1, 1);
  if (lua_getfield(L, -1, "new") != LUA_TFUNCTION) luaL_error(L, "sigmamind.core: cjson.safe has no new()");
  lua_call(L, 0, 1);                       /* the private instance */
  /* numbers with up to 14 significant digits round-trip (cjson 2.1.0's maximum); integers are printed by
     cjson from doubles, exact up to 2^53 */
  if (lua_getfield(L, -1, "encode_number_precision") == LUA_TFUNCTION) {
    lua_pushinteger(L, 14);
    lua_call(L, 1, 0);
  } else lua_pop(L, 1);
  if (lua_getfield(L, -1, "decode_invalid_numbers") == LUA_TFUNCTION) {
    lua_pushboolean(L, 0);
    lua_call(L, 1, 0);
  } else lua_pop(L, 1);
  lua_getfield(L, -1, "encode");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &encode_key);
  lua_getfield(L, -1, "decode");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &decode_key);
  lua_pop(L, 2);                           /* instance, cjson.safe */
}

void sm_push_null(lua_State *L) { lua_pushlightuserdata(L, NULL); }  /* cjson.null is NULL lightuserdata */

int sm_json_encode(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &encode_key);
  lua_pushvalue(L, idx);
  lua_call(L, 1, 2);
  if (lua_type(L, -2) == LUA_TSTRING) { lua_pop(L, 1); return 1; }
  return 0;
}

/* integral floats within ±2^53 become integers, in place, depth first */
static void fixup(lua_State *L, int idx, int depth) {
  if (depth > 1000) return;                /* cjson refuses deeper documents anyway */
  luaL_checkstack(L, 4, "sigmamind.core: JSON too deep");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int t = lua_type(L, -1);
    if (t == LUA_TNUMBER && !lua_isinteger(L, -1)) {
      double d = lua_tonumber(L, -1);
      if (d == floor(d) && fabs(d) <= MAX_SAFE) {
        lua_pushvalue(L, -2);
        lua_pushinteger(L, (lua_Integer)d);
        lua_rawset(L, idx);                /* assigning an existing field during traversal is allowed */
      }
    } else if (t == LUA_TTABLE) {
      fixup(L, lua_gettop(L), depth + 1);
    }
    lua_pop(L, 1);
  }
}

int sm_json_decode(lua_State *L, const char *s, size_t len) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &decode_key);
  lua_pushlstring(L, s, len);
  lua_call(L, 1, 2);
  if (lua_isnil(L, -2)) return 0;
  lua_pop(L, 1);
  if (lua_type(L, -1) == LUA_TTABLE) fixup(L, lua_gettop(L), 0);
  else if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
    double d = lua_tonumber(L, -1);
    if (d == floor(d) && fabs(d) <= MAX_SAFE) { lua_pop(L, 1); lua_pushinteger(L, (lua_Integer)d); }
  }
  return 1;
}
