/* compat.h: the Lua 5.2-5.4 C API the core uses, provided on Lua 5.1/LuaJIT 2.1 (OpenResty's VM), so that the
   rest of src/ is written once against Lua 5.4 and needs no #ifdef. Every header of ours reaches Lua through it.
   LuaJIT 2.1 already has LUA_OK, luaL_setfuncs, luaL_newlib, luaL_setmetatable and luaL_testudata. */
#ifndef SM_COMPAT_H
#define SM_COMPAT_H

#include "lua.h"
#include "lauxlib.h"

/* The core runs on Lua 5.4 and on LuaJIT 2.1 (whose luaconf.h alone defines LUA_LJDIR); LuaRocks cannot express
   "5.4 or LuaJIT", so the versions that would build and then fail at run time are refused here, by name. */
#if LUA_VERSION_NUM == 502 || LUA_VERSION_NUM == 503 || (LUA_VERSION_NUM == 501 && !defined(LUA_LJDIR))
#error "lua-sigmamind needs Lua 5.4 or LuaJIT 2.1 (OpenResty): with LuaRocks, --lua-version 5.4, or --lua-version 5.1 LUA_INCDIR=<LuaJIT's include directory>"
#endif

#if LUA_VERSION_NUM < 502

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LUA_INTEGER_FMT "%td"   /* LuaJIT's lua_Integer is ptrdiff_t */

#define luaL_pushfail(L) lua_pushnil(L)
#define lua_rawlen(L, i) lua_objlen(L, (i))

static inline int sm_compat_absindex(lua_State *L, int i) {
  return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}
#define lua_absindex(L, i) sm_compat_absindex(L, (i))

/* 5.3+ getters return the type of the value pushed; the originals are still called (no recursive expansion) */
#define lua_getfield(L, i, k) (lua_getfield(L, (i), (k)), lua_type(L, -1))
#define lua_rawgeti(L, i, n) (lua_rawgeti(L, (i), (n)), lua_type(L, -1))
#define lua_rawget(L, i) (lua_rawget(L, (i)), lua_type(L, -1))
#define lua_gettable(L, i) (lua_gettable(L, (i)), lua_type(L, -1))

static inline int sm_compat_rawgetp(lua_State *L, int i, const void *p) {
  i = sm_compat_absindex(L, i);
  lua_pushlightuserdata(L, (void *)(size_t)p);   /* via size_t: -Wcast-qual */
  lua_rawget(L, i);
  return lua_type(L, -1);
}
static inline void sm_compat_rawsetp(lua_State *L, int i, const void *p) {
  i = sm_compat_absindex(L, i);
  lua_pushlightuserdata(L, (void *)(size_t)p);
  lua_insert(L, -2);
  lua_rawset(L, i);
}
#define lua_rawgetp(L, i, p) sm_compat_rawgetp(L, (i), (p))
#define lua_rawsetp(L, i, p) sm_compat_rawsetp(L, (i), (p))

/* 5.1 numbers are doubles: an integer is an integral double within ±2^53 */
static inline int sm_compat_isinteger(lua_State *L, int i) {
  lua_Number d;
  if (lua_type(L, i) != LUA_TNUMBER) return 0;
  d = lua_tonumber(L, i);
  return d == floor(d) && fabs(d) <= 9007199254740992.0;
}
#define lua_isinteger(L, i) sm_compat_isinteger(L, (i))

/* user values: a 5.1 userdata has one environment table; user value n is its slot n */
static inline void *sm_compat_newuserdatauv(lua_State *L, size_t sz, int nuv) {
  void *p = lua_newuserdata(L, sz);
  if (nuv > 0) {
    lua_createtable(L, nuv, 0);
    lua_setfenv(L, -2);
  }
  return p;
}
static inline int sm_compat_getiuservalue(lua_State *L, int i, int n) {
  lua_getfenv(L, i);
  if (lua_type(L, -1) != LUA_TTABLE) { lua_pop(L, 1); lua_pushnil(L); return LUA_TNONE; }
  lua_rawgeti(L, -1, n);
  lua_remove(L, -2);
  return lua_type(L, -1);
}
static inline int sm_compat_setiuservalue(lua_State *L, int i, int n) {
  i = sm_compat_absindex(L, i);
  lua_getfenv(L, i);
  if (lua_type(L, -1) != LUA_TTABLE) { lua_pop(L, 2); return 0; }
  lua_insert(L, -2);
  lua_rawseti(L, -2, n);
  lua_pop(L, 1);
  return 1;
}
#define lua_newuserdatauv(L, sz, nuv) sm_compat_newuserdatauv(L, (sz), (nuv))
#define lua_getiuservalue(L, i, n) sm_compat_getiuservalue(L, (i), (n))
#define lua_setiuservalue(L, i, n) sm_compat_setiuservalue(L, (i), (n))

/* buffers: 5.1's luaL_Buffer has a fixed LUAL_BUFFERSIZE area; a sized result goes through a scratch userdata */
static inline char *sm_compat_prepbuffsize(luaL_Buffer *b, size_t n) {
  if (n > LUAL_BUFFERSIZE) luaL_error(b->L, "sigmamind.core: buffer request too large");
  if ((size_t)(b->buffer + LUAL_BUFFERSIZE - b->p) < n) luaL_prepbuffer(b);   /* flushes: all of it free */
  return b->p;
}
static inline char *sm_compat_buffinitsize(lua_State *L, luaL_Buffer *b, size_t sz) {
  b->L = L;
  return (char *)lua_newuserdata(L, sz ? sz : 1);
}
static inline void sm_compat_pushresultsize(luaL_Buffer *b, size_t n) {
  lua_pushlstring(b->L, (const char *)lua_touserdata(b->L, -1), n);
  lua_remove(b->L, -2);
}
#define luaL_prepbuffsize(b, n) sm_compat_prepbuffsize((b), (n))
#define luaL_buffinitsize(L, b, sz) sm_compat_buffinitsize(L, (b), (sz))
#define luaL_pushresultsize(b, n) sm_compat_pushresultsize((b), (n))

/* lua_pushfstring with 5.3's %I (a lua_Integer); each directive is formatted by the VM's own or snprintf */
static inline const char *sm_compat_pushfstring(lua_State *L, const char *fmt, ...) {
  va_list ap;
  int n = 0;
  const char *e;
  char tmp[32];
  va_start(ap, fmt);
  while ((e = strchr(fmt, '%')) != NULL) {
    lua_pushlstring(L, fmt, (size_t)(e - fmt)); n++;
    switch (e[1]) {
      case 's': { const char *s = va_arg(ap, const char *); lua_pushstring(L, s ? s : "(null)"); break; }
      case 'd': lua_pushfstring(L, "%d", va_arg(ap, int)); break;
      case 'c': lua_pushfstring(L, "%c", va_arg(ap, int)); break;
      case 'f': lua_pushfstring(L, "%f", va_arg(ap, lua_Number)); break;
      case 'p': lua_pushfstring(L, "%p", va_arg(ap, void *)); break;
      case 'I': snprintf(tmp, sizeof tmp, LUA_INTEGER_FMT, va_arg(ap, LUA_INTEGER)); lua_pushstring(L, tmp); break;
      case '%': lua_pushliteral(L, "%"); break;
      default: luaL_error(L, "sigmamind.core: bad format '%%%c'", e[1]);
    }
    n++;
    fmt = e + 2;
    if (n > 40) { lua_concat(L, n); n = 1; }
  }
  va_end(ap);
  lua_pushstring(L, fmt);
  lua_concat(L, n + 1);
  return lua_tostring(L, -1);
}
#define lua_pushfstring sm_compat_pushfstring

#endif /* LUA_VERSION_NUM < 502 */

#endif
